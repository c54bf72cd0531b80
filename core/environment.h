// Facts about where a run ran, for results.json and every benchmark's header.
#pragma once

#include <string>
#include <vector>

namespace sscl {

std::string sscl_version();
std::string git_commit();  // of the source tree at configure time
std::string libtorch_version();
// The BLAS libraries mapped into this process (resolved paths), e.g.
// /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3. Empty if none found.
std::vector<std::string> loaded_blas_libraries();
std::string cpu_model();
double peak_rss_mib();  // peak resident set size of this process

}  // namespace sscl
