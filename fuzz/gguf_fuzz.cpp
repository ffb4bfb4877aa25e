// libFuzzer target for the GGUF reader: rejection must be a FormatError. An accepted file must
// hold its promises: every typed accessor either answers or throws FormatError, every tensor's
// bytes lie inside the file and match its type and shape, and every readable tensor can be
// viewed and dequantized (ASan checks each byte read stays in the copy of the input).
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "format/gguf.h"
#include "nef/error.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <typename F>
void accessor(F&& f) {
  try {
    f();
  } catch (const nef::FormatError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nef::format::GgufFile;
  std::optional<GgufFile> f;
  try {
    f.emplace(GgufFile::parse(data, size));
  } catch (const nef::FormatError&) {
    return 0;
  }
  for (const std::string& k : f->keys()) {
    accessor([&] { (void)f->get_u32(k); });
    accessor([&] { (void)f->get_i64(k); });
    accessor([&] { (void)f->get_f32(k); });
    accessor([&] { (void)f->get_bool(k); });
    accessor([&] { (void)f->get_string(k); });
    accessor([&] { (void)f->get_string_array(k); });
    accessor([&] { (void)f->get_int_array(k); });
    accessor([&] { (void)f->get_float_array(k); });
  }
  check(f->data_offset() % f->alignment() == 0);
  for (const auto& t : f->tensors()) {
    check(f->find_tensor(t.name) == &t);
    check(f->data_offset() + t.offset + t.nbytes <= size);
    nef::Array raw = f->raw(t.name);
    check(raw.nbytes() == t.nbytes);
    if (!t.supported()) {
      try {
        (void)f->tensor(t.name);
        std::abort();
      } catch (const nef::UnsupportedError&) {
      }
      continue;
    }
    nef::Array a = f->tensor(t.name);
    check(a.nbytes() == t.nbytes && a.data() == raw.data());
    try {
      nef::Array v = f->dequantize(t.name);
      check(v.numel() == nef::numel(t.shape) && v.dtype == nef::DType::Float32);
    } catch (const nef::TypeError&) {
      check(t.dtype && nef::is_integer(*t.dtype));
    }
  }
  return 0;
}
