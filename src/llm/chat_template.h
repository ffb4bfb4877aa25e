// Chat templates: turning a conversation into the prompt text an instruct model was trained on.
// GGUF files carry the template as Jinja source (tokenizer.chat_template). NEF does not run
// Jinja: it recognizes the template's family and renders that family's format natively.
// Supported: ChatML (<|im_start|>role\ncontent<|im_end|>\n, SmolLM2, Qwen2, ...), with the
// default system prompt a template inserts when the conversation does not start with one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nef::llm {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

class ChatTemplate {
 public:
  // Recognizes `source`. UnsupportedError when it is empty or of a family NEF does not render
  // (the message quotes the template's start).
  explicit ChatTemplate(std::string_view source);

  // The prompt for `messages`; with `add_generation_prompt` it ends with the opening of the
  // assistant's turn. ValidationError for a message with an empty role.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  const std::string& family() const { return family_; }  // "chatml"
  // Inserted as a system message when the first message is not one; "" when the template has
  // none.
  const std::string& default_system_prompt() const { return default_system_; }
  // The text that closes a turn ("<|im_end|>"): a stop string for generation.
  const std::string& end_of_turn() const { return end_of_turn_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_, family_, default_system_, end_of_turn_;
};

}  // namespace nef::llm
