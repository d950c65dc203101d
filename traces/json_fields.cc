#include "traces/json_fields.h"

#include <fstream>
#include <sstream>

namespace residency::traces {

Status JsonFields::Allow(const std::set<std::string>& keys) const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!keys.count(it.key())) return InvalidArgument(origin_ + ": unknown field '" + it.key() + "'");
  return Status::Ok();
}

Status JsonFields::String(const char* key, std::string& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  if (!j_[key].is_string()) return InvalidArgument(Where(key) + " must be a string");
  out = j_[key].get<std::string>();
  return Status::Ok();
}

Status JsonFields::Bool(const char* key, bool& out) const {
  if (!Has(key)) return Status::Ok();
  if (!j_[key].is_boolean()) return InvalidArgument(Where(key) + " must be true or false");
  out = j_[key].get<bool>();
  return Status::Ok();
}

Status JsonFields::Int(const char* key, int& out, int lo, int hi) const {
  if (!Has(key)) return Status::Ok();
  const auto& v = j_[key];
  if (!v.is_number_integer()) return InvalidArgument(Where(key) + " must be an integer");
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi)
    return InvalidArgument(Where(key) + " must be in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(n));
  out = static_cast<int>(n);
  return Status::Ok();
}

Status JsonFields::Size(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseBytes(j_[key], Where(key)));
  return Status::Ok();
}

Status JsonFields::Rate(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseRate(j_[key], Where(key)));
  return Status::Ok();
}

Status JsonFields::Duration(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseDuration(j_[key], Where(key)));
  return Status::Ok();
}

Result<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& origin) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(origin + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(origin + ": expected a JSON object");
  return j;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return DataLoss(path + ": read error");
  return buffer.str();
}

}  // namespace residency::traces
