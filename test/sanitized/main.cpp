// The doctest main of janusdna_sanitized_tests: the torch-free readers of untrusted files (safetensors, zip,
// pickle, torch.save archives) and their fuzz tests, built with AddressSanitizer and UndefinedBehaviorSanitizer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
