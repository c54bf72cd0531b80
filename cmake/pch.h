// The precompiled header every torch-using translation unit shares. Our own
// headers include only the narrow LibTorch headers they need.
#pragma once
#include <torch/torch.h>
