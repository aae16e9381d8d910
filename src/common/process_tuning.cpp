#include "common/process_tuning.hpp"

#include <dlfcn.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace shepherd {

std::string raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::string("cannot read the open-files limit: ") + std::strerror(errno);
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(limit.rlim_cur);
}

bool return_freed_memory_promptly() {
  // gperftools' C interface, looked up by name: the libraries do not link the allocator (the
  // sanitizer build runs without it), only the programs do.
  using SetProperty = int (*)(const char*, size_t);
  void* symbol = dlsym(RTLD_DEFAULT, "MallocExtension_SetNumericProperty");
  if (symbol == nullptr) return false;
  return reinterpret_cast<SetProperty>(symbol)("tcmalloc.aggressive_memory_decommit", 1) != 0;
}

}  // namespace shepherd
