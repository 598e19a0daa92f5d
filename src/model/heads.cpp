#include "janusdna/heads.h"

namespace janusdna {

torch::Tensor base_log_probs(const torch::Tensor& logits) {
    return torch::log_softmax(logits.narrow(-1, 7, 4).to(torch::kFloat), -1); // [..., 4]
}

} // namespace janusdna
