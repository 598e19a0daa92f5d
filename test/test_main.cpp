#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "janusdna/runtime.h"

int main(int argc, char** argv) {
    janusdna::set_compute_threads(2);
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
