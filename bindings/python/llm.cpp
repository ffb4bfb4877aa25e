// nef._nef's language-model classes (src/llm): Tokenizer, StreamDecoder, ChatTemplate,
// StopStrings. python/nef/llm.py wraps them with the Python conveniences.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>
#include <vector>

#include "llm/chat_template.h"
#include "llm/stop_strings.h"
#include "llm/tokenizer.h"
#include "nef/error.h"
#include "shape_caster.h"

namespace nefpy {

namespace nb = nanobind;
using namespace nb::literals;
using nef::llm::Tokenizer;

namespace {

// Python ints -> token ids; a value outside int32 is reported like any other bad id.
std::vector<int32_t> to_ids(const Tokenizer& t, const std::vector<int64_t>& ids) {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= t.vocab_size())
      throw nef::ValidationError(nef::str("[tokenizer] token id ", id,
                                          " is out of range for a vocabulary of ", t.vocab_size(),
                                          " tokens"));
    out.push_back(int32_t(id));
  }
  return out;
}

int32_t to_id(const Tokenizer& t, int64_t id) { return to_ids(t, {id})[0]; }

nb::bytes to_bytes(const std::string& s) { return nb::bytes(s.data(), s.size()); }

// Text from Python: str as UTF-8, or bytes as they are (text that is not UTF-8 still encodes).
std::string text_arg(nb::handle text) {
  if (PyBytes_Check(text.ptr())) {
    return std::string(PyBytes_AS_STRING(text.ptr()), size_t(PyBytes_GET_SIZE(text.ptr())));
  }
  if (!PyUnicode_Check(text.ptr()))
    throw nef::TypeError(nef::str("[tokenizer] text must be str or bytes, not ",
                                  nb::cast<std::string>(nb::str(text.type()))));
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(text.ptr(), &n);
  if (!p) throw nb::python_error();  // lone surrogates: Python's UnicodeEncodeError
  return std::string(p, size_t(n));
}

// Bytes that may not be UTF-8 -> str, with U+FFFD where they are not.
nb::str lossy_str(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace");
  if (!o) throw nb::python_error();
  return nb::steal<nb::str>(o);
}

}  // namespace

void bind_llm(nb::module_& m) {
  nb::class_<Tokenizer>(m, "Tokenizer")
      .def(
          "__init__",
          [](Tokenizer* self, std::vector<std::string> tokens, std::vector<std::string> merges,
             std::vector<int32_t> token_types, int32_t bos_id, int32_t eos_id, int32_t unk_id,
             int32_t pad_id, int32_t eot_id, bool add_bos, bool add_eos, std::string pre,
             std::string model) {
            nef::llm::TokenizerData d;
            d.tokens = std::move(tokens);
            d.merges = std::move(merges);
            d.token_types = std::move(token_types);
            d.bos_id = bos_id;
            d.eos_id = eos_id;
            d.unk_id = unk_id;
            d.pad_id = pad_id;
            d.eot_id = eot_id;
            d.add_bos = add_bos;
            d.add_eos = add_eos;
            d.pre = std::move(pre);
            d.model = std::move(model);
            nb::gil_scoped_release release;
            new (self) Tokenizer(std::move(d));
          },
          "tokens"_a, "merges"_a, "token_types"_a, "bos_id"_a, "eos_id"_a, "unk_id"_a, "pad_id"_a,
          "eot_id"_a, "add_bos"_a, "add_eos"_a, "pre"_a, "model"_a)
      .def(
          "encode",
          [](const Tokenizer& t, nb::handle text, bool parse_special, bool add_special) {
            std::string s = text_arg(text);
            nb::gil_scoped_release release;
            return t.encode(s, parse_special, add_special);
          },
          "text"_a, "parse_special"_a, "add_special"_a)
      .def(
          "decode_bytes",
          [](const Tokenizer& t, const std::vector<int64_t>& ids, bool skip_special) {
            return to_bytes(t.decode(to_ids(t, ids), skip_special));
          },
          "ids"_a, "skip_special"_a)
      .def(
          "decode",
          [](const Tokenizer& t, const std::vector<int64_t>& ids, bool skip_special) {
            return lossy_str(t.decode(to_ids(t, ids), skip_special));
          },
          "ids"_a, "skip_special"_a)
      .def("token_text",
           [](const Tokenizer& t, int64_t id) { return lossy_str(t.token_text(to_id(t, id))); })
      .def("token_bytes",
           [](const Tokenizer& t, int64_t id) { return to_bytes(t.token_bytes(to_id(t, id))); })
      .def("token_type",
           [](const Tokenizer& t, int64_t id) { return int(t.token_type(to_id(t, id))); })
      .def("token_id", [](const Tokenizer& t, const std::string& text) { return t.token_id(text); })
      .def("is_special", [](const Tokenizer& t, int64_t id) { return t.is_special(to_id(t, id)); })
      .def("is_eog", [](const Tokenizer& t, int64_t id) { return t.is_eog(to_id(t, id)); })
      .def_prop_ro("eog_ids", &Tokenizer::eog_ids)
      .def_prop_ro("vocab_size", &Tokenizer::vocab_size)
      .def_prop_ro("bos_id", &Tokenizer::bos_id)
      .def_prop_ro("eos_id", &Tokenizer::eos_id)
      .def_prop_ro("unk_id", &Tokenizer::unk_id)
      .def_prop_ro("pad_id", &Tokenizer::pad_id)
      .def_prop_ro("eot_id", &Tokenizer::eot_id)
      .def_prop_ro("add_bos", &Tokenizer::add_bos)
      .def_prop_ro("add_eos", &Tokenizer::add_eos)
      .def_prop_ro("pre", &Tokenizer::pre);

  // The decoder points at its tokenizer: keep_alive holds the tokenizer while it lives.
  nb::class_<nef::llm::StreamDecoder>(m, "StreamDecoder")
      .def(nb::init<const Tokenizer&, bool>(), "tokenizer"_a, "skip_special"_a,
           nb::keep_alive<1, 2>())
      .def("push",
           [](nef::llm::StreamDecoder& d, int64_t id) { return d.push(to_id(d.tokenizer(), id)); })
      .def("flush", &nef::llm::StreamDecoder::flush)
      .def_prop_ro("has_pending", &nef::llm::StreamDecoder::has_pending);

  nb::class_<nef::llm::ChatTemplate>(m, "ChatTemplate")
      .def(nb::init<const std::string&>(), "source"_a)
      .def(
          "apply",
          [](const nef::llm::ChatTemplate& c,
             const std::vector<std::pair<std::string, std::string>>& messages,
             bool add_generation_prompt) {
            std::vector<nef::llm::ChatMessage> msgs;
            for (const auto& [role, content] : messages) msgs.push_back({role, content});
            return c.apply(msgs, add_generation_prompt);
          },
          "messages"_a, "add_generation_prompt"_a)
      .def_prop_ro("family", &nef::llm::ChatTemplate::family)
      .def_prop_ro("default_system_prompt", &nef::llm::ChatTemplate::default_system_prompt)
      .def_prop_ro("end_of_turn", &nef::llm::ChatTemplate::end_of_turn)
      .def_prop_ro("source", &nef::llm::ChatTemplate::source);

  nb::class_<nef::llm::StopStrings>(m, "StopStrings")
      .def(nb::init<std::vector<std::string>>(), "stops"_a)
      .def("push",
           [](nef::llm::StopStrings& s, const std::string& text) {
             auto r = s.push(text);
             return std::make_pair(r.text, r.stopped);
           })
      .def("flush", &nef::llm::StopStrings::flush)
      .def_prop_ro("stopped", &nef::llm::StopStrings::stopped)
      .def_prop_ro("matched", &nef::llm::StopStrings::matched);
}

}  // namespace nefpy
