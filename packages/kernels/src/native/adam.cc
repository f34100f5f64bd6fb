// tfjs-core's Adam step for one variable in a single pass:
//   m' = β1·m + (1 − β1)·g,  v' = β2·v + (1 − β2)·g²
//   value' = value − lr · (m' / (1 − β1ᵗ)) / (√(v' / (1 − β2ᵗ)) + ε)
#include <omp.h>

#include <cmath>

#include "kernels.h"

namespace ns {

void adam_update(const float* value, const float* gradient, const float* first_moment, const float* second_moment,
                 size_t size, float learning_rate, float beta1, float beta2, float epsilon,
                 float one_minus_acc_beta1, float one_minus_acc_beta2, float* new_value, float* new_first_moment,
                 float* new_second_moment) {
  const bool parallel = size >= (1 << 15);
#pragma omp parallel for if (parallel) schedule(static)
  for (size_t i = 0; i < size; ++i) {
    const float g = gradient[i];
    const float m = first_moment[i] * beta1 + g * (1.0f - beta1);
    const float v = second_moment[i] * beta2 + (g * g) * (1.0f - beta2);
    new_first_moment[i] = m;
    new_second_moment[i] = v;
    const float corrected_m = m / one_minus_acc_beta1;
    const float corrected_v = v / one_minus_acc_beta2;
    new_value[i] = (corrected_m / (std::sqrt(corrected_v) + epsilon)) * -learning_rate + value[i];
  }
}

}  // namespace ns
