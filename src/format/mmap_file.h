// A read-only view of a whole file through mmap (POSIX). Arrays borrow the mapping through
// Storage::borrow with the shared_ptr as owner, so it stays mapped while any view lives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nef::format {

class MappedFile {
 public:
  // Maps `path` privately (copy-on-write: a stray write into a constant never reaches the file
  // and never faults). Throws Error(ErrorCode::Generic) naming the path on I/O errors.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }  // nullptr for an empty file
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole file into memory (for small files such as .npy); throws like MappedFile::open.
std::string read_file_bytes(const std::string& path);
// Writes bytes to `path` through a temporary file and rename, so readers never see half a file.
void write_file_bytes(const std::string& path, const uint8_t* data, size_t size);

}  // namespace nef::format
