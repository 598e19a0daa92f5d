#include "janusdna/heads.h"

namespace janusdna {

torch::Tensor base_log_probs(const torch::Tensor& logits) {
    return torch::log_softmax(logits.narrow(-1, 7, 4).to(torch::kFloat), -1); // [..., 4]
}

int base_index(char b) {
    switch (b) {
        case 'A': case 'a': return 0;
        case 'C': case 'c': return 1;
        case 'G': case 'g': return 2;
        case 'T': case 't': return 3;
        default: return -1;
    }
}

} // namespace janusdna
