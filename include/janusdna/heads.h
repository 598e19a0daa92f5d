// What the LM head's logits mean to users: probabilities of the four bases, log-likelihood ratios, pseudo-
// log-likelihoods. Probabilities are renormalised over A/C/G/T: the special tokens' mass (tiny for a trained
// model) is removed.
#pragma once
#include <torch/types.h>

#include "janusdna/tokenizer.h"  // base_index

namespace janusdna {

// logits [..., V] -> log p(base) [..., 4] over A, C, G, T (token ids 7..10), renormalised over the four.
torch::Tensor base_log_probs(const torch::Tensor& logits);

} // namespace janusdna
