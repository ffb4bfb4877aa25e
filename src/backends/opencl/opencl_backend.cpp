#include "backends/opencl/opencl_backend.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "backends/opencl/cl_api.h"
#include "backends/opencl/opencl_device.h"
#include "common/log.h"
#include "nef/error.h"

extern char** environ;

namespace nef::backend::opencl {
namespace {

// "name:size:mtime:inode" of a file, or "name:-" when it is missing.
std::string stat_text(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":-";
  return str(path, ":", int64_t(st.st_size), ":", int64_t(st.st_mtime), ".",
             int64_t(st.st_mtim.tv_nsec), ":", int64_t(st.st_ino));
}

// The entries of a directory whose names start with `prefix` (sorted), or none.
std::vector<std::string> entries(const std::string& dir, const std::string& prefix = "") {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n.rfind(prefix, 0) == 0) out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Where the dynamic loader would find library `name`: its stat_text in the first directory that
// has it (LD_LIBRARY_PATH, then the usual system directories; the loader's cache file is part
// of the fingerprint, so installs that run ldconfig change it too).
std::string library_text(const std::string& name) {
  if (name.find('/') != std::string::npos) return stat_text(name);
  std::vector<std::string> dirs;
  if (const char* p = std::getenv("LD_LIBRARY_PATH")) {
    std::stringstream ss(p);
    for (std::string d; std::getline(ss, d, ':');)
      if (!d.empty()) dirs.push_back(d);
  }
  for (const char* d : {"/usr/local/lib", "/usr/local/lib64", "/usr/lib/x86_64-linux-gnu",
                        "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                        "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib"})
    dirs.push_back(d);
  for (const std::string& d : dirs) {
    struct stat st {};
    std::string path = d + "/" + name;
    if (::stat(path.c_str(), &st) == 0) return stat_text(path);
  }
  return name + ":not found";
}

std::string read_small(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > 4096 ? s.substr(0, 4096) : s;
}

class OpenclBackend final : public Backend {
 public:
  std::string name() const override { return "opencl"; }

  // What the ICD loader would load, read without loading it: the OpenCL-related environment,
  // the loader library, each vendor .icd file with the library it names, the loader's cache,
  // and the GPU device nodes (a GPU appearing under an installed driver changes them).
  std::optional<std::string> fingerprint() const override {
    std::string fp;
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string v = *e;
      if (v.rfind("OCL_", 0) == 0 || v.rfind("POCL_", 0) == 0 || v.rfind("NEF_OPENCL", 0) == 0 ||
          v.rfind("LD_LIBRARY_PATH=", 0) == 0)
        env.push_back(v);
    }
    std::sort(env.begin(), env.end());
    for (const std::string& v : env) fp += v + "\n";
    const char* lib = std::getenv("NEF_OPENCL_LIBRARY");
    fp += library_text(lib && *lib ? lib : "libOpenCL.so.1") + "\n";
    fp += stat_text("/etc/ld.so.cache") + "\n";
    const char* vendors = std::getenv("OCL_ICD_VENDORS");
    std::string dir = vendors && *vendors ? vendors : "/etc/OpenCL/vendors";
    std::vector<std::string> icds;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      for (const std::string& n : entries(dir))
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".icd") == 0) icds.push_back(dir + "/" + n);
    } else {
      icds.push_back(dir);
    }
    for (const std::string& icd : icds) {
      std::string text = read_small(icd);
      fp += stat_text(icd) + "=" + text + "\n";
      std::string libname = text.substr(0, text.find_first_of("\r\n"));
      if (!libname.empty()) fp += library_text(libname) + "\n";
    }
    for (const std::string& n : entries("/dev/dri")) fp += "/dev/dri/" + n + "\n";
    for (const std::string& n : entries("/dev", "nvidia")) fp += "/dev/" + n + "\n";
    for (const std::string& n : entries("/dev", "kfd")) fp += "/dev/" + n + "\n";
    return fp;
  }

  std::vector<DevicePtr> probe(std::string& problem) override {
    std::vector<DevicePtr> out;
    try {
      std::string why;
      const Api* cl = api(&why);
      if (!cl) {
        problem = why;
        return out;
      }
      cl_uint np = 0;
      cl_int rc = cl->clGetPlatformIDs(0, nullptr, &np);
      if (rc != CL_SUCCESS || np == 0) {
        problem = rc == CL_SUCCESS ? "no OpenCL platform (no ICD installed)"
                                   : str("clGetPlatformIDs: ", error_name(rc));
        return out;
      }
      std::vector<cl_platform_id> platforms(np);
      cl->clGetPlatformIDs(np, platforms.data(), nullptr);
      std::string problems;
      int index = 0;
      for (cl_platform_id p : platforms) {
        cl_uint nd = 0;
        if (cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0)
          continue;
        std::vector<cl_device_id> devices(nd);
        cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, devices.data(), nullptr);
        for (cl_device_id d : devices) {
          std::string reason;
          auto dev = OpenclDevice::make(*cl, p, d, index, reason);
          if (!dev) {
            debug_log(str("opencl: device skipped: ", reason));
            problems += str(problems.empty() ? "" : "; ", reason);
            continue;
          }
          ++index;
          out.push_back(std::move(dev));
        }
      }
      if (out.empty()) problem = problems.empty() ? "no OpenCL device" : problems;
    } catch (const std::exception& e) {
      problem = str("probe failed: ", e.what());
      out.clear();
    }
    return out;
  }
};

}  // namespace

std::shared_ptr<Backend> make_opencl_backend() { return std::make_shared<OpenclBackend>(); }

}  // namespace nef::backend::opencl
