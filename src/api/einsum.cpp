// einsum over NEF ops: parse the equation, broadcast the "..." dims of every operand to one
// shape, take diagonals for labels repeated within an operand, sum each label as soon as no
// later operand or the output needs it, contract the operands pairwise from left to right as
// batched matmuls ([batch, M, K] @ [batch, K, N]), and transpose to the output's label order.
// The result has the operands' promoted dtype (numpy's einsum keeps it; NEF's sum would widen
// small integers).
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nef/error.h"
#include "nef/tensor.h"

namespace nef {
namespace {

// Labels: letters keep their character code; "..." dims get kEllipsis + position, counted from
// the right so that broadcast dims line up across operands.
constexpr int kEllipsis = 1000;

struct Term {
  std::vector<int> labels;  // one per dim of the operand, "..." expanded
};

[[noreturn]] void bad(const std::string& eq, const std::string& why) {
  throw ValidationError(str("[einsum] equation \"", eq, "\": ", why));
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The letters and whether "..." appears (at which position among them) in one term.
struct Parsed {
  std::vector<int> letters;
  int ellipsis_at = -1;  // index in `letters` before which "..." sits
};

Parsed parse_term(const std::string& eq, const std::string& t) {
  Parsed p;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, "...") == 0) {
      if (p.ellipsis_at >= 0) bad(eq, str("\"...\" appears twice in \"", t, "\""));
      p.ellipsis_at = int(p.letters.size());
      i += 3;
    } else if (is_letter(t[i])) {
      p.letters.push_back(t[i++]);
    } else {
      bad(eq,
          str("unexpected character '", t[i], "' (labels are letters, broadcast dims \"...\")"));
    }
  }
  return p;
}

Term expand(const Parsed& p, int64_t ell_rank) {
  Term t;
  for (size_t i = 0; i < p.letters.size(); ++i) {
    if (int(i) == p.ellipsis_at)
      for (int64_t e = 0; e < ell_rank; ++e) t.labels.push_back(kEllipsis + int(e));
    t.labels.push_back(p.letters[i]);
  }
  if (p.ellipsis_at == int(p.letters.size()))
    for (int64_t e = 0; e < ell_rank; ++e) t.labels.push_back(kEllipsis + int(e));
  return t;
}

std::vector<int64_t> positions(const std::vector<int>& labels, const std::vector<int>& want) {
  std::vector<int64_t> out;
  for (int l : want) out.push_back(std::find(labels.begin(), labels.end(), l) - labels.begin());
  return out;
}

// Moves the dims of x (labelled `labels`) into the order `want`.
Tensor permute(const Tensor& x, const std::vector<int>& labels, const std::vector<int>& want) {
  std::vector<int64_t> perm = positions(labels, want);
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == int64_t(i);
  return identity ? x : transpose(x, perm);
}

// Sums the dims labelled with anything outside `keep`.
Tensor sum_except(Tensor x, std::vector<int>& labels, const std::set<int>& keep) {
  std::vector<int64_t> axes;
  std::vector<int> left;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (keep.count(labels[i])) left.push_back(labels[i]);
    else axes.push_back(int64_t(i));
  }
  if (axes.empty()) return x;
  labels = left;
  return sum(x, axes, false);
}

// The diagonal over the two dims i < j (equal sizes n): those dims move to the end, merge into
// n*n, and every (n+1)-th element is gathered; the result's last dim is the diagonal.
Tensor diagonal(const Tensor& x, std::vector<int>& labels, size_t i, size_t j) {
  const int64_t n = x.shape()[i];
  std::vector<int> order;
  for (size_t d = 0; d < labels.size(); ++d)
    if (d != i && d != j) order.push_back(labels[d]);
  const int label = labels[i];
  std::vector<int64_t> perm;
  for (size_t d = 0; d < labels.size(); ++d)
    if (d != i && d != j) perm.push_back(int64_t(d));
  perm.push_back(int64_t(i));
  perm.push_back(int64_t(j));
  Tensor t = transpose(x, perm);
  Shape merged(t.shape().begin(), t.shape().end() - 2);
  merged.push_back(n * n);
  Tensor flat = reshape(t, merged);
  Tensor idx = arange(0, double(n * n), double(n + 1), DType::Int64);
  order.push_back(label);
  labels = order;
  return gather(flat, idx, int64_t(merged.size()) - 1);
}

}  // namespace

Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands) {
  std::string eq;
  for (char c : equation)
    if (c != ' ' && c != '\t') eq += c;
  if (operands.empty()) bad(equation, "needs at least one operand");
  const size_t arrow = eq.find("->");
  const bool explicit_out = arrow != std::string::npos;
  const std::string lhs = explicit_out ? eq.substr(0, arrow) : eq;
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(
        lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != operands.size())
    bad(equation, str(terms.size(), " input terms for ", operands.size(), " operands"));

  // Parse, find the broadcast rank and check each operand's rank.
  std::vector<Parsed> parsed;
  int64_t ell_rank = 0;
  for (size_t k = 0; k < terms.size(); ++k) {
    parsed.push_back(parse_term(equation, terms[k]));
    const int64_t rank = operands[k].rank(), n = int64_t(parsed[k].letters.size());
    if (parsed[k].ellipsis_at < 0 ? rank != n : rank < n)
      throw ShapeError(str("[einsum] term \"", terms[k], "\" has ", n, " labels",
                           parsed[k].ellipsis_at < 0 ? "" : " besides \"...\"", " but operand ", k,
                           " has shape ", shape_str(operands[k].shape())));
    if (parsed[k].ellipsis_at >= 0) ell_rank = std::max(ell_rank, rank - n);
  }

  // Labels per operand; label sizes must agree ("..." dims broadcast).
  std::vector<Term> in;
  std::vector<Tensor> xs;
  std::map<int, int64_t> size_of;
  Shape ell_shape(size_t(ell_rank), 1);
  for (size_t k = 0; k < terms.size(); ++k) {
    const int64_t rank = operands[k].rank(), n = int64_t(parsed[k].letters.size());
    const int64_t own = parsed[k].ellipsis_at < 0 ? 0 : rank - n;
    Term t = expand(parsed[k], own);
    // This operand's "..." dims are the last `own` of the broadcast dims.
    for (int& l : t.labels)
      if (l >= kEllipsis) l += int(ell_rank - own);
    const Shape& s = operands[k].shape();
    for (size_t d = 0; d < t.labels.size(); ++d) {
      const int l = t.labels[d];
      if (l >= kEllipsis) {
        int64_t& e = ell_shape[size_t(l - kEllipsis)];
        if (e != s[d] && e != 1 && s[d] != 1)
          throw ShapeError(str("[einsum] \"...\" dims of operand ", k, " ", shape_str(s),
                               " do not broadcast with the others (", equation, ")"));
        if (s[d] != 1) e = s[d];
        continue;
      }
      auto [it, fresh] = size_of.emplace(l, s[d]);
      if (!fresh && it->second != s[d])
        throw ShapeError(str("[einsum] label '", char(l), "' has size ", it->second, " and ", s[d],
                             " (operand ", k, " ", shape_str(s), ", ", equation, ")"));
    }
    in.push_back(std::move(t));
  }
  for (int64_t e = 0; e < ell_rank; ++e) size_of[kEllipsis + int(e)] = ell_shape[size_t(e)];
  // Broadcast each operand's "..." dims to the common shape (a view).
  for (size_t k = 0; k < operands.size(); ++k) {
    Shape want;
    for (size_t d = 0; d < in[k].labels.size(); ++d) {
      const int l = in[k].labels[d];
      want.push_back(l < kEllipsis ? operands[k].shape()[d] : size_of[l]);
    }
    xs.push_back(want == operands[k].shape() ? operands[k] : broadcast_to(operands[k], want));
  }

  // Output labels: explicit, or "..." then the letters used once, in alphabetical order.
  std::vector<int> out;
  if (explicit_out) {
    // "..." dims the output leaves out are summed.
    out = expand(parse_term(equation, eq.substr(arrow + 2)), ell_rank).labels;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] < kEllipsis && !size_of.count(out[i]))
        bad(equation, str("output label '", char(out[i]), "' is in no input term"));
      if (std::count(out.begin(), out.end(), out[i]) > 1)
        bad(equation, str("output label '", char(out[i]), "' appears twice"));
    }
  } else {
    for (int64_t e = 0; e < ell_rank; ++e) out.push_back(kEllipsis + int(e));
    std::map<int, int> count;
    for (const Term& t : in)
      for (int l : t.labels)
        if (l < kEllipsis) ++count[l];
    for (const auto& [l, c] : count)
      if (c == 1) out.push_back(l);
  }
  const std::set<int> out_set(out.begin(), out.end());

  DType dt = operands[0].dtype();
  for (const Tensor& x : operands) dt = promote_types(dt, x.dtype());

  // Diagonals within each operand.
  for (size_t k = 0; k < xs.size(); ++k) {
    std::vector<int>& labels = in[k].labels;
    for (bool found = true; found;) {
      found = false;
      for (size_t i = 0; i < labels.size() && !found; ++i)
        for (size_t j = i + 1; j < labels.size() && !found; ++j)
          if (labels[i] == labels[j]) {
            xs[k] = diagonal(xs[k], labels, i, j);
            found = true;
          }
    }
  }

  // Labels needed at or after operand k (by a later operand or the output).
  auto needed_after = [&](size_t k) {
    std::set<int> s = out_set;
    for (size_t j = k + 1; j < xs.size(); ++j) s.insert(in[j].labels.begin(), in[j].labels.end());
    return s;
  };

  Tensor acc = xs[0];
  std::vector<int> acc_labels = in[0].labels;
  {
    std::set<int> keep = needed_after(0);
    acc = sum_except(acc, acc_labels, keep);
  }
  for (size_t k = 1; k < xs.size(); ++k) {
    std::set<int> later = needed_after(k);
    std::vector<int> bl = in[k].labels;
    // Labels of B used nowhere else are summed first.
    std::set<int> keep_b = later;
    keep_b.insert(acc_labels.begin(), acc_labels.end());
    Tensor b = sum_except(xs[k], bl, keep_b);
    std::set<int> keep_a = later;
    keep_a.insert(bl.begin(), bl.end());
    acc = sum_except(acc, acc_labels, keep_a);
    std::vector<int> batch, contracted, a_only, b_only;
    for (int l : acc_labels) {
      const bool in_b = std::find(bl.begin(), bl.end(), l) != bl.end();
      if (!in_b) a_only.push_back(l);
      else if (later.count(l)) batch.push_back(l);
      else contracted.push_back(l);
    }
    for (int l : bl)
      if (std::find(acc_labels.begin(), acc_labels.end(), l) == acc_labels.end())
        b_only.push_back(l);
    auto extent = [&](const std::vector<int>& ls) {
      int64_t n = 1;
      for (int l : ls) n *= size_of[l];
      return n;
    };
    Shape batch_shape;
    for (int l : batch) batch_shape.push_back(size_of[l]);
    const int64_t m = extent(a_only), kk = extent(contracted), n = extent(b_only);
    std::vector<int> a_order = batch, b_order = batch;
    a_order.insert(a_order.end(), a_only.begin(), a_only.end());
    a_order.insert(a_order.end(), contracted.begin(), contracted.end());
    b_order.insert(b_order.end(), contracted.begin(), contracted.end());
    b_order.insert(b_order.end(), b_only.begin(), b_only.end());
    Shape a3 = batch_shape, b3 = batch_shape;
    a3.push_back(m);
    a3.push_back(kk);
    b3.push_back(kk);
    b3.push_back(n);
    Tensor prod = matmul(reshape(permute(acc, acc_labels, a_order), a3),
                         reshape(permute(b, bl, b_order), b3));
    Shape res = batch_shape;
    std::vector<int> res_labels = batch;
    for (int l : a_only) res.push_back(size_of[l]), res_labels.push_back(l);
    for (int l : b_only) res.push_back(size_of[l]), res_labels.push_back(l);
    acc = reshape(prod, res);
    acc_labels = res_labels;
  }
  acc = sum_except(acc, acc_labels, out_set);
  acc = permute(acc, acc_labels, out);
  return acc.dtype() == dt ? acc : cast(acc, dt);
}

}  // namespace nef
