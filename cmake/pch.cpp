// Compiles cmake/pch.h once; the other targets reuse it.
