#include "harness/agent/byte_budget.h"

namespace residency::agent {

ByteBudget::Claim& ByteBudget::Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    Reset();
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
  }
  return *this;
}

void ByteBudget::Claim::Reset() {
  if (budget_) budget_->Give(bytes_);
  budget_ = nullptr;
  bytes_ = 0;
}

std::optional<ByteBudget::Claim> ByteBudget::Take(std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  if (bytes > capacity_ - used_) return std::nullopt;  // used_ <= capacity_ always
  used_ += bytes;
  return Claim(this, bytes);
}

void ByteBudget::Give(std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  used_ -= bytes;
}

std::uint64_t ByteBudget::in_use() const {
  std::lock_guard lock(mu_);
  return used_;
}

}  // namespace residency::agent
