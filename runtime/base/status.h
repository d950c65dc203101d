// Errors as values. Status carries a canonical code and a message that names
// the numbers; Result<T> is a value or a Status. Nothing here throws.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace residency {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // malformed input: a bad trace line, an unknown name
  kNotFound,            // a model, file or preset that does not exist
  kFailedPrecondition,  // an op that the current state does not allow
  kResourceExhausted,   // infeasible: the working set does not fit
  kDataLoss,            // truncated or corrupt data
  kInternal,            // an executor failed to carry out a command
  kUnavailable,         // a service (an agent) could not be reached or refused
};

std::string_view ToString(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

#define RESIDENCY_RETURN_IF_ERROR(expr)          \
  do {                                           \
    ::residency::Status status_ = (expr);        \
    if (!status_.ok()) return status_;           \
  } while (false)

#define RESIDENCY_STATUS_CONCAT_INNER(a, b) a##b
#define RESIDENCY_STATUS_CONCAT(a, b) RESIDENCY_STATUS_CONCAT_INNER(a, b)
#define RESIDENCY_ASSIGN_OR_RETURN_IMPL(lhs, expr, tmp) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()
// RESIDENCY_ASSIGN_OR_RETURN(Type name, ResultExpr): declares or assigns
// `name` from a Result, returning its Status from the caller on error.
#define RESIDENCY_ASSIGN_OR_RETURN(lhs, expr) \
  RESIDENCY_ASSIGN_OR_RETURN_IMPL(lhs, expr, RESIDENCY_STATUS_CONCAT(result_, __LINE__))

}  // namespace residency
