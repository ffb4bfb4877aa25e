// Shapes and strides (in elements), numpy broadcasting.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace nef {

// A vector of int64 dims with inline storage for ranks up to kInline: copying, building or
// returning a shape of rank <= kInline never touches the heap (an Array holds two of them and is
// copied on every op, so std::vector cost two mallocs per copy). Larger ranks spill to the heap.
// The API is the std::vector subset NEF uses; iterators are raw pointers and are invalidated by
// any operation that may grow the vector (as with std::vector) and by moves of an inline Dims.
// kInline = 6: covers the ranks of practically every inference tensor (<= 5D conv/NCDHW plus one)
// and keeps sizeof(Dims) at one 64-byte cache line; 8 would cost 16 more bytes per Dims.
class Dims {
 public:
  using value_type = int64_t;
  using size_type = size_t;
  using difference_type = ptrdiff_t;
  using reference = int64_t&;
  using const_reference = const int64_t&;
  using pointer = int64_t*;
  using const_pointer = const int64_t*;
  using iterator = int64_t*;
  using const_iterator = const int64_t*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;
  static constexpr size_t kInline = 6;

  Dims() noexcept : p_(buf_), size_(0), cap_(kInline) {}
  explicit Dims(size_t n) : Dims() { assign(n, 0); }
  Dims(size_t n, int64_t v) : Dims() { assign(n, v); }
  Dims(std::initializer_list<int64_t> il) : Dims() { assign(il.begin(), il.end()); }
  template <std::input_iterator It>
  Dims(It first, It last) : Dims() {
    assign(first, last);
  }
  // Implicit both ways so code and APIs written for std::vector<int64_t> keep working; the
  // conversion to std::vector allocates, so hot paths keep shapes as Dims end to end.
  Dims(const std::vector<int64_t>& v) : Dims() { assign(v.data(), v.data() + v.size()); }
  operator std::vector<int64_t>() const { return std::vector<int64_t>(begin(), end()); }
  std::vector<int64_t> to_vector() const { return std::vector<int64_t>(begin(), end()); }

  Dims(const Dims& o) : Dims() { assign(o.begin(), o.end()); }
  Dims(Dims&& o) noexcept : Dims() { steal(o); }
  ~Dims() { release(); }
  Dims& operator=(const Dims& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  Dims& operator=(Dims&& o) noexcept {
    if (this != &o) {
      release();
      p_ = buf_;
      cap_ = kInline;
      size_ = 0;
      steal(o);
    }
    return *this;
  }
  Dims& operator=(std::initializer_list<int64_t> il) {
    assign(il.begin(), il.end());
    return *this;
  }

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  size_t capacity() const noexcept { return cap_; }
  // True while the dims live in the inline buffer (no heap block owned).
  bool is_inline() const noexcept { return p_ == buf_; }
  int64_t* data() noexcept { return p_; }
  const int64_t* data() const noexcept { return p_; }
  int64_t& operator[](size_t i) noexcept { return p_[i]; }
  const int64_t& operator[](size_t i) const noexcept { return p_[i]; }
  int64_t& at(size_t i) {
    if (i >= size_) throw std::out_of_range("Dims::at");
    return p_[i];
  }
  const int64_t& at(size_t i) const {
    if (i >= size_) throw std::out_of_range("Dims::at");
    return p_[i];
  }
  int64_t& front() noexcept { return p_[0]; }
  const int64_t& front() const noexcept { return p_[0]; }
  int64_t& back() noexcept { return p_[size_ - 1]; }
  const int64_t& back() const noexcept { return p_[size_ - 1]; }

  iterator begin() noexcept { return p_; }
  iterator end() noexcept { return p_ + size_; }
  const_iterator begin() const noexcept { return p_; }
  const_iterator end() const noexcept { return p_ + size_; }
  const_iterator cbegin() const noexcept { return p_; }
  const_iterator cend() const noexcept { return p_ + size_; }
  reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
  reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }

  void reserve(size_t n) {
    if (n > cap_) grow_to(n);
  }
  void clear() noexcept { size_ = 0; }
  void push_back(int64_t v) {
    if (size_ == cap_) grow_to(cap_ * 2);
    p_[size_++] = v;
  }
  int64_t& emplace_back(int64_t v) {
    push_back(v);
    return back();
  }
  void pop_back() noexcept { --size_; }
  void resize(size_t n) { resize(n, 0); }
  void resize(size_t n, int64_t v) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) p_[i] = v;
    size_ = static_cast<uint32_t>(n);
  }
  void assign(size_t n, int64_t v) {
    size_ = 0;
    resize(n, v);
  }
  template <std::input_iterator It>
  void assign(It first, It last) {
    if constexpr (std::forward_iterator<It>) {
      size_t n = static_cast<size_t>(std::distance(first, last));
      size_ = 0;
      reserve(n);
      std::copy(first, last, p_);
      size_ = static_cast<uint32_t>(n);
    } else {
      size_ = 0;
      for (; first != last; ++first) push_back(*first);
    }
  }
  void assign(std::initializer_list<int64_t> il) { assign(il.begin(), il.end()); }

  iterator insert(const_iterator pos, int64_t v) { return insert(pos, size_t{1}, v); }
  iterator insert(const_iterator pos, size_t n, int64_t v) {
    size_t at = open_gap(pos, n);
    std::fill(p_ + at, p_ + at + n, v);
    return p_ + at;
  }
  template <std::input_iterator It>
  iterator insert(const_iterator pos, It first, It last) {
    // Copy first: the source may alias this vector (e.g. insert(begin(), begin(), end())).
    Dims tmp(first, last);
    size_t at = open_gap(pos, tmp.size());
    std::copy(tmp.begin(), tmp.end(), p_ + at);
    return p_ + at;
  }
  iterator insert(const_iterator pos, std::initializer_list<int64_t> il) {
    return insert(pos, il.begin(), il.end());
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    size_t a = static_cast<size_t>(first - p_), b = static_cast<size_t>(last - p_);
    std::copy(p_ + b, p_ + size_, p_ + a);
    size_ -= static_cast<uint32_t>(b - a);
    return p_ + a;
  }

  void swap(Dims& o) noexcept {
    Dims t(std::move(o));
    o = std::move(*this);
    *this = std::move(t);
  }
  friend void swap(Dims& a, Dims& b) noexcept { a.swap(b); }

  friend bool operator==(const Dims& a, const Dims& b) noexcept {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend std::strong_ordering operator<=>(const Dims& a, const Dims& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }
  // Mixed comparisons with std::vector without a heap copy of either side.
  friend bool operator==(const Dims& a, const std::vector<int64_t>& b) noexcept {
    return a.size_ == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend std::strong_ordering operator<=>(const Dims& a, const std::vector<int64_t>& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

  // FNV-style mix of the dims; equal Dims hash equal (size included).
  size_t hash() const noexcept {
    uint64_t h = 1469598103934665603ull ^ size_;
    for (int64_t d : *this) h = (h ^ static_cast<uint64_t>(d)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }

 private:
  void release() noexcept {
    if (p_ != buf_) delete[] p_;
  }
  void grow_to(size_t n) {
    n = std::max<size_t>(n, kInline * 2);
    int64_t* q = new int64_t[n];
    if (size_) std::memcpy(q, p_, size_ * sizeof(int64_t));
    release();
    p_ = q;
    cap_ = static_cast<uint32_t>(n);
  }
  // Takes o's dims; o is left empty and inline. *this must be empty and inline.
  void steal(Dims& o) noexcept {
    if (o.p_ == o.buf_) {
      if (o.size_) std::memcpy(buf_, o.buf_, o.size_ * sizeof(int64_t));
    } else {
      p_ = o.p_;
      cap_ = o.cap_;
      o.p_ = o.buf_;
      o.cap_ = kInline;
    }
    size_ = o.size_;
    o.size_ = 0;
  }
  // Shifts [pos, end) right by n (growing if needed); returns pos's index.
  size_t open_gap(const_iterator pos, size_t n) {
    size_t at = static_cast<size_t>(pos - p_);
    // Grow geometrically, and only when the dims no longer fit (inline stays inline).
    if (size_ + n > cap_) grow_to(std::max<size_t>(size_ + n, size_t{cap_} * 2));
    std::copy_backward(p_ + at, p_ + size_, p_ + size_ + n);
    size_ += static_cast<uint32_t>(n);
    return at;
  }

  int64_t* p_;
  uint32_t size_;
  uint32_t cap_;
  int64_t buf_[kInline];
};

using Shape = Dims;
using Strides = Dims;

// Ranks above this are rejected everywhere (API, loader): keeps stack buffers and loops bounded.
inline constexpr int kMaxRank = 16;
// Element counts above this are rejected (no shape product may overflow int64 arithmetic).
inline constexpr int64_t kMaxElements = int64_t{1} << 48;

std::string shape_str(const Shape& s);  // "(2, 3)"

// Product of dims; throws ShapeError on negative dims or if the product exceeds kMaxElements.
int64_t checked_numel(const Shape& s, const char* op = "shape");
inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s);

// numpy broadcast of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read `from` (with its strides) as if broadcast to `to` (stride 0 on broadcast dims).
Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to);

// Normalizes a possibly negative axis; throws ShapeError "[op] axis A out of range for rank R".
int normalize_axis(int64_t axis, int rank, const char* op);

}  // namespace nef

template <>
struct std::hash<nef::Dims> {
  size_t operator()(const nef::Dims& d) const noexcept { return d.hash(); }
};
