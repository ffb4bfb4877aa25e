#include "format/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/host_memory.h"
#include "nef/error.h"

namespace nef::format {
namespace {

[[noreturn]] void io_error(const char* what, const std::string& path) {
  throw Error(ErrorCode::Generic, str("[", what, "] '", path, "': ", std::strerror(errno)));
}

// Closes a descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) io_error("open", path);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) io_error("stat", path);
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    io_error("open", path);
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ == 0) return m;  // mmap of length 0 is an error; nothing to map anyway
  void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) io_error("mmap", path);
  m->data_ = static_cast<uint8_t*>(p);
  host_note_file_mapping(p, m->size_);
  return m;
}

MappedFile::~MappedFile() {
  if (!data_) return;
  host_forget_file_mapping(data_);
  ::munmap(data_, size_);
}

std::string read_file_bytes(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) io_error("open", path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(f.fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      io_error("read", path);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void write_file_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) io_error("write", tmp);
    size_t done = 0;
    while (done < size) {
      ssize_t w = ::write(f.fd, data + done, size - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::unlink(tmp.c_str());
        errno = e;
        io_error("write", tmp);
      }
      done += static_cast<size_t>(w);
    }
    if (::close(f.fd) != 0) {
      f.fd = -1;
      int e = errno;
      ::unlink(tmp.c_str());
      errno = e;
      io_error("write", tmp);
    }
    f.fd = -1;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    io_error("write", path);
  }
}

}  // namespace nef::format
