// A frozen copy of the model: the teacher of LwF and iCaRL (the model as it was
// at the end of the previous task), Mean Teacher's, and QBC's committee members.
#pragma once

#include "core/method.h"

namespace sscl {

// A new Classifier with the same architecture (built with context.make_backbone
// and the model's head layout), holding a copy of every parameter and buffer of
// `model`, in eval mode and without gradients.
Classifier frozen_copy(Classifier& model, const MethodContext& context);

// The same copy, trainable (gradients on) and in train mode: the members of an
// active-learning QBC committee.
Classifier trainable_copy(Classifier& model, const MethodContext& context);

}  // namespace sscl
