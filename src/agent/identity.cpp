#include "agent/identity.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace shepherd::agent {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// NVML's C API as far as the agent uses it (nvml.h is not needed to build): every call returns
// nvmlReturn_t, 0 being NVML_SUCCESS; a device handle is an opaque pointer.
using NvmlReturn = int;
using NvmlDevice = void*;
using InitFn = NvmlReturn (*)();
using GetCountFn = NvmlReturn (*)(unsigned int*);
using GetHandleFn = NvmlReturn (*)(unsigned int, NvmlDevice*);
using GetNameFn = NvmlReturn (*)(NvmlDevice, char*, unsigned int);
using DriverVersionFn = NvmlReturn (*)(char*, unsigned int);
using ShutdownFn = NvmlReturn (*)();
using ErrorStringFn = const char* (*)(NvmlReturn);

// Larger than NVML_DEVICE_NAME_V2_BUFFER_SIZE (96) and NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE (80).
constexpr unsigned int kNvmlBuffer = 256;

class Library {
 public:
  explicit Library(const std::string& name)
      : handle_(dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) {}
  ~Library() {
    if (handle_) dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  explicit operator bool() const { return handle_ != nullptr; }

  template <typename Fn>
  Fn symbol(const char* name) const {
    return reinterpret_cast<Fn>(dlsym(handle_, name));
  }

 private:
  void* handle_;
};

}  // namespace

std::string read_boot_id(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line))
    throw std::runtime_error("cannot read the boot id from " + path);
  line = trim(line);
  if (line.empty()) throw std::runtime_error("empty boot id in " + path);
  return line;
}

std::string list_ib_devices(const std::string& sys_dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(sys_dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
  return joined;
}

std::string primary_ipv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::string ip;
  for (const ifaddrs* a = list; a && ip.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if (!(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) ip = text;
  }
  freeifaddrs(list);
  return ip;
}

GpuInventory query_gpus(const std::string& library) {
  GpuInventory inv;
  const Library nvml(library);
  if (!nvml) {
    inv.problem = library + " not found";
    return inv;
  }
  const auto init = nvml.symbol<InitFn>("nvmlInit_v2");
  const auto get_count = nvml.symbol<GetCountFn>("nvmlDeviceGetCount_v2");
  const auto get_handle = nvml.symbol<GetHandleFn>("nvmlDeviceGetHandleByIndex_v2");
  const auto get_name = nvml.symbol<GetNameFn>("nvmlDeviceGetName");
  const auto driver_version = nvml.symbol<DriverVersionFn>("nvmlSystemGetDriverVersion");
  const auto shutdown = nvml.symbol<ShutdownFn>("nvmlShutdown");
  const auto error_string = nvml.symbol<ErrorStringFn>("nvmlErrorString");
  if (!init || !get_count || !get_handle || !get_name || !driver_version || !shutdown) {
    inv.problem = library + " lacks an NVML function the agent needs";
    return inv;
  }
  const auto failed = [&](const char* call, NvmlReturn rc) {
    const char* text = error_string ? error_string(rc) : nullptr;
    return std::string(call) + " failed: " + (text ? text : "error " + std::to_string(rc));
  };

  if (const NvmlReturn rc = init(); rc != 0) {
    inv.problem = failed("nvmlInit_v2", rc);
    return inv;
  }
  char buffer[kNvmlBuffer] = {};
  if (const NvmlReturn rc = driver_version(buffer, kNvmlBuffer - 1); rc == 0)
    inv.driver_version = buffer;
  else
    inv.problem = failed("nvmlSystemGetDriverVersion", rc);

  unsigned int count = 0;
  if (const NvmlReturn rc = get_count(&count); rc != 0) {
    inv.problem = failed("nvmlDeviceGetCount_v2", rc);
    count = 0;
  }
  std::vector<std::string> models;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    if (const NvmlReturn rc = get_handle(i, &device); rc != 0) {
      // A GPU NVML cannot open is still there: counted, and the problem says which.
      inv.problem = failed("nvmlDeviceGetHandleByIndex_v2", rc) + " for GPU " + std::to_string(i);
      continue;
    }
    buffer[0] = '\0';
    if (get_name(device, buffer, kNvmlBuffer - 1) == 0 &&
        std::find(models.begin(), models.end(), buffer) == models.end())
      models.emplace_back(buffer);
  }
  inv.count = static_cast<int>(count);
  for (const auto& m : models) inv.model += (inv.model.empty() ? "" : ",") + m;
  shutdown();
  return inv;
}

}  // namespace shepherd::agent
