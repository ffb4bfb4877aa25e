// Small helpers shared by the commands: input specs, file checks, safe output names, array
// summaries and attribute text.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <type_traits>
#include <variant>

#include "cli.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::cli {

std::pair<std::string, std::string> split_input_spec(const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    throw UsageError(str("--input '", spec, "' must be NAME=FILE.npy"));
  }
  std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
  if (name.empty() || file.empty()) {
    throw UsageError(str("--input '", spec, "' must be NAME=FILE.npy (empty ",
                         name.empty() ? "NAME" : "FILE", ")"));
  }
  return {name, file};
}

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    throw Error(ErrorCode::Generic, str("cannot open ", what, " '", path, "': no such file"));
  }
  if (!std::filesystem::is_regular_file(st)) {
    throw Error(ErrorCode::Generic, str("cannot open ", what, " '", path, "': not a regular file"));
  }
}

std::string output_file_name(const std::string& tensor_name, size_t index) {
  std::string s;
  for (char c : tensor_name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    s += ok ? c : '_';
  }
  // No "", ".", ".." or hidden files; cap the length below common file-name limits.
  if (s.empty() || s[0] == '.') s = "output_" + std::to_string(index) + s;
  if (s.size() > 200) s = s.substr(0, 200);
  return s + ".npy";
}

namespace {

std::string num_str(double v, DType t) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (t == DType::Bool) return v != 0 ? "true" : "false";
  char buf[64];
  if (is_integer(t)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

}  // namespace

std::string summarize(const std::string& name, const Array& a) {
  std::ostringstream os;
  os << name << ": shape " << shape_str(a.shape) << " " << dtype_name(a.dtype) << "\n";
  int64_t n = a.numel();
  if (n == 0) {
    os << "  (empty)\n";
    return os.str();
  }
  Array c = a.contiguous();
  constexpr int64_t kShown = 6;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t nans = 0;
  std::vector<double> first;
  nef::dispatch_dtype(c.dtype, [&]<typename T>() {
    const T* p = c.data_as<T>();
    for (int64_t i = 0; i < n; ++i) {
      double v = double(nef::load_as(p[i]));
      if (i < kShown) first.push_back(v);
      if (std::isnan(v)) {
        ++nans;
        continue;
      }
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
    }
  });
  os << "  values: [";
  for (size_t i = 0; i < first.size(); ++i) os << (i ? ", " : "") << num_str(first[i], c.dtype);
  os << (n > kShown ? ", ...]" : "]") << " (" << n << " element" << (n == 1 ? "" : "s") << ")\n";
  if (nans == n) {
    os << "  all nan\n";
  } else {
    // The mean is reported as a float even for ints and bools (a fraction of true for bool).
    os << "  min " << num_str(lo, c.dtype) << "  max " << num_str(hi, c.dtype) << "  mean "
       << num_str(sum / double(n - nans), DType::Float64);
    if (nans) os << "  nan " << nans;
    os << "\n";
  }
  return os.str();
}

std::string attr_value_str(const ir::AttrValue& v) {
  auto num = [](double d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", d);
    return std::string(buf);
  };
  return std::visit(
      [&](const auto& x) -> std::string {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, int64_t>) {
          return std::to_string(x);
        } else if constexpr (std::is_same_v<X, double>) {
          return num(x);
        } else if constexpr (std::is_same_v<X, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<X, std::string>) {
          return "\"" + x + "\"";
        } else {
          constexpr size_t kMax = 8;  // long lists (big shapes) would swamp the table
          std::string s = "[";
          for (size_t i = 0; i < x.size() && i < kMax; ++i) {
            if (i) s += ", ";
            if constexpr (std::is_same_v<X, std::vector<int64_t>>) s += std::to_string(x[i]);
            else s += num(x[i]);
          }
          if (x.size() > kMax) s += str(", ... (", x.size(), " items)");
          return s + "]";
        }
      },
      v);
}

int64_t type_bytes(const ir::TensorType& t) {
  return numel(t.shape) * int64_t(dtype_size(t.dtype));
}

}  // namespace nef::cli
