// A budget of bytes shared by every request body being received: a request
// claims its declared length (or the body limit, when chunked) before its
// body is read, and gives it back once the handler is done with the body. A
// claim that would exceed the budget is refused, so the memory held by bodies
// in flight stays bounded however many clients upload at once.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

namespace residency::agent {

class ByteBudget {
 public:
  explicit ByteBudget(std::uint64_t capacity) : capacity_(capacity) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Move-only; gives its bytes back when destroyed or reset.
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) { other.budget_ = nullptr; }
    Claim& operator=(Claim&& other) noexcept;
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim() { Reset(); }
    void Reset();

   private:
    friend class ByteBudget;
    Claim(ByteBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    ByteBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
  };

  // Nothing when `bytes` more would exceed the capacity.
  std::optional<Claim> Take(std::uint64_t bytes);
  std::uint64_t in_use() const;
  std::uint64_t capacity() const { return capacity_; }

 private:
  void Give(std::uint64_t bytes);
  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;
};

}  // namespace residency::agent
