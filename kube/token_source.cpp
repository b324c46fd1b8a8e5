// Token sources: a ClientConfig's token (file re-read as it rotates) and TokenRequest tokens.

#include "kube/token_source.h"

#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

namespace kpc::kube {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

// Service-account token files rotate well before expiry; a minute between reads is plenty.
constexpr std::chrono::seconds kTokenFileRefresh{60};
// How long a failed TokenRequest is remembered (and answered with) before the next attempt.
constexpr std::chrono::seconds kFailureBackoff{10};
// A token longer than this is not a token (JWTs of the API server are ~1 KB).
constexpr size_t kMaxTokenBytes = 64u << 10;

class ClientConfigTokenSource final : public TokenSource {
 public:
  ClientConfigTokenSource(const ClientConfig& config, const Clock& clock)
      : file_(config.bearer_token_file), token_(config.bearer_token), clock_(clock) {}

  StatusOr<std::string> Token() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (file_.empty()) return token_;
    const auto now = clock_.Now();
    if (!read_at_ || now - *read_at_ >= kTokenFileRefresh) {
      std::ifstream in(file_);
      std::stringstream ss;
      if (in) ss << in.rdbuf();
      std::string tok = ss.str();
      while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
      if (!in || tok.empty() || tok.size() > kMaxTokenBytes) {
        spdlog::warn("cannot read the token file {}; keeping the previous token", file_);
      } else {
        token_ = std::move(tok);
      }
      read_at_ = now;
    }
    return token_;
  }

  void Invalidate() override {
    std::lock_guard<std::mutex> lock(mu_);
    read_at_.reset();
  }

  std::string Describe() const override {
    return file_.empty() ? "the kubeconfig's credentials" : "the token in " + file_;
  }

 private:
  const std::string file_;
  std::mutex mu_;
  std::string token_;
  std::optional<TimePoint> read_at_;
  const Clock& clock_;
};

class ServiceAccountTokenSource final : public TokenSource {
 public:
  ServiceAccountTokenSource(Client& client, const Clock& clock, ServiceAccountTokenOptions options)
      : client_(client), clock_(clock), options_(std::move(options)) {}

  StatusOr<std::string> Token() override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = clock_.Now();
    const bool have = token_.has_value() && now < expires_at_;
    if (have && now < renew_at_) return *token_;
    if (failure_ && now < retry_at_) {
      if (have) return *token_;
      return *failure_;
    }
    if (Status s = Request(now); !s.ok()) {
      failure_ = s;
      retry_at_ = now + kFailureBackoff;
      if (have) {
        spdlog::warn("{}; using the current token until it expires", s.message());
        return *token_;
      }
      return s;
    }
    failure_.reset();
    return *token_;
  }

  void Invalidate() override {
    std::lock_guard<std::mutex> lock(mu_);
    renew_at_ = {};
  }

  std::string Describe() const override {
    return "ServiceAccount " + options_.ns + "/" + options_.name;
  }

 private:
  Status Request(TimePoint now) {
    const std::string path =
        "/api/v1/namespaces/" + options_.ns + "/serviceaccounts/" + options_.name + "/token";
    const nlohmann::json request = {
        {"apiVersion", "authentication.k8s.io/v1"},
        {"kind", "TokenRequest"},
        {"spec", {{"expirationSeconds", options_.expiration.count()}}}};
    Result r = client_.Create(path, request);
    if (!r.ok()) {
      std::string hint;
      if (r.status.code() == StatusCode::kPermissionDenied) {
        hint = ": grant `create serviceaccounts/token` on it to the controller's ServiceAccount "
               "(deploy/base/rbac.yaml)";
      } else if (r.status.code() == StatusCode::kNotFound) {
        hint = ": create the ServiceAccount (deploy/base/serviceaccount.yaml)";
      }
      return Status(r.status.code(),
                    "cannot get a token for " + Describe() + hint + " (" + r.status.message() + ")");
    }
    const auto& status = r.body.value("status", nlohmann::json::object());
    const auto& spec = r.body.value("spec", nlohmann::json::object());
    if (!status.is_object() || !status.contains("token") || !status["token"].is_string() ||
        status["token"].get_ref<const std::string&>().empty() ||
        status["token"].get_ref<const std::string&>().size() > kMaxTokenBytes) {
      return Internal("the TokenRequest for " + Describe() + " returned no usable token");
    }
    // The API server may shorten (or extend) the lifetime asked for; it says which in the spec.
    int64_t seconds = options_.expiration.count();
    if (spec.is_object() && spec.contains("expirationSeconds") &&
        spec["expirationSeconds"].is_number_integer()) {
      seconds = std::clamp<int64_t>(spec["expirationSeconds"].get<int64_t>(), 60, 86400 * 366);
    }
    token_ = status["token"].get<std::string>();
    expires_at_ = now + std::chrono::seconds(seconds);
    renew_at_ = TokenRenewAt(now, std::chrono::seconds(seconds));
    spdlog::info("kubelet credentials: a token of {} valid for {}s", Describe(), seconds);
    return Status::Ok();
  }

  Client& client_;
  const Clock& clock_;
  const ServiceAccountTokenOptions options_;
  std::mutex mu_;
  std::optional<std::string> token_;
  TimePoint expires_at_{};
  TimePoint renew_at_{};
  std::optional<Status> failure_;
  TimePoint retry_at_{};
};

}  // namespace

std::chrono::steady_clock::time_point TokenRenewAt(std::chrono::steady_clock::time_point issued,
                                                   std::chrono::seconds lifetime) {
  return issued + lifetime * 8 / 10;
}

std::unique_ptr<TokenSource> NewClientConfigTokenSource(const ClientConfig& config, const Clock& clock) {
  return std::make_unique<ClientConfigTokenSource>(config, clock);
}

std::unique_ptr<TokenSource> NewServiceAccountTokenSource(Client& client, const Clock& clock,
                                                          ServiceAccountTokenOptions options) {
  return std::make_unique<ServiceAccountTokenSource>(client, clock, std::move(options));
}

}  // namespace kpc::kube
