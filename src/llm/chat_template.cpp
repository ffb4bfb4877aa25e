#include "llm/chat_template.h"

#include "nef/error.h"

namespace nef::llm {

namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

// The string literals of a Jinja source ('...' or "..."), with their escapes resolved.
std::vector<std::string> string_literals(std::string_view src) {
  std::vector<std::string> out;
  for (size_t i = 0; i < src.size(); ++i) {
    char q = src[i];
    if (q != '\'' && q != '"') continue;
    std::string lit;
    size_t j = i + 1;
    for (; j < src.size() && src[j] != q; ++j) {
      if (src[j] == '\\' && j + 1 < src.size()) {
        char e = src[++j];
        lit += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      } else {
        lit += src[j];
      }
    }
    if (j >= src.size()) break;  // unterminated: not a literal
    out.push_back(std::move(lit));
    i = j;
  }
  return out;
}

std::string excerpt(std::string_view src) {
  std::string out;
  for (char c : src.substr(0, 80)) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  if (src.size() > 80) out += str("... (", src.size(), " bytes)");
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source) : source_(source) {
  if (source.empty()) throw UnsupportedError("[chat template] the model has no chat template");
  if (source.find(kImStart) == std::string_view::npos ||
      source.find(kImEnd) == std::string_view::npos) {
    throw UnsupportedError(
        str("[chat template] unsupported chat template (NEF renders ChatML templates; it does "
            "not run Jinja): '",
            excerpt(source), "'"));
  }
  family_ = "chatml";
  end_of_turn_ = std::string(kImEnd);
  // A default system prompt is a literal holding a whole system turn.
  const std::string open = std::string(kImStart) + "system\n";
  const std::string close = std::string(kImEnd) + "\n";
  for (const std::string& lit : string_literals(source)) {
    if (lit.size() >= open.size() + close.size() && lit.compare(0, open.size(), open) == 0 &&
        lit.compare(lit.size() - close.size(), close.size(), close) == 0) {
      default_system_ = lit.substr(open.size(), lit.size() - open.size() - close.size());
      break;
    }
  }
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) const {
  std::string out;
  auto turn = [&](std::string_view role, std::string_view content) {
    out.append(kImStart).append(role).append("\n").append(content).append(kImEnd).append("\n");
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role.empty())
      throw ValidationError(str("[chat template] message ", i, " has an empty role"));
    if (i == 0 && !default_system_.empty() && m.role != "system") turn("system", default_system_);
    turn(m.role, m.content);
  }
  if (add_generation_prompt) out.append(kImStart).append("assistant\n");
  return out;
}

}  // namespace nef::llm
