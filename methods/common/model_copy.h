// Copies of the model: the teacher of LwF and iCaRL (the model as it was at the
// end of the previous task), Mean Teacher's, QBC's committee members, and the
// freshly initialised networks GDumb restarts from.
#pragma once

#include <cstdint>

#include "core/method.h"

namespace sscl {

// A new Classifier with the layout of `like` (context.make_backbone and the same
// head: one over every class, or one per task), freshly initialised, on the
// context's device.
Classifier fresh_classifier(const Classifier& like, const MethodContext& context);

// The same, initialised from torch's CPU generator seeded by `seed` (its state
// restored after, so the rest of the run is unaffected): the same network
// whatever ran before, and on a resume.
Classifier seeded_fresh_classifier(const Classifier& like, const MethodContext& context, uint64_t seed);

// Copies every parameter and buffer of `from` into `into` (same architecture),
// keeping `into`'s tensors (an optimizer or the context may hold them).
void copy_parameters_and_buffers(Classifier& into, const Classifier& from);

// A fresh_classifier holding a copy of every parameter and buffer of `model`, in
// eval mode and without gradients.
Classifier frozen_copy(Classifier& model, const MethodContext& context);

// The same copy, trainable (gradients on) and in train mode: the members of an
// active-learning QBC committee.
Classifier trainable_copy(Classifier& model, const MethodContext& context);

// The bytes of a copy's parameters and buffers (0 for an empty holder), for stats().
double copy_bytes(const Classifier& copy);

}  // namespace sscl
