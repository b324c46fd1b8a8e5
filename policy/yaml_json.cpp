#include "policy/yaml_json.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "policy/text_match.h"

namespace kpc::policy {
namespace {

// A document that expands to more values than this (for example through nested aliases,
// the "billion laughs" shape) is refused instead of exhausting memory.
constexpr size_t kMaxValues = 2'000'000;

std::string EscapePointerToken(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

bool In(const std::string& s, std::initializer_list<const char*> set) {
  for (const char* c : set) {
    if (s == c) return true;
  }
  return false;
}

// Resolves a plain (unquoted) scalar the way Kubernetes' YAML decoder (go-yaml v2, YAML 1.1
// booleans) does, so that `kubectl apply` of the same file sees the same types.
nlohmann::json ResolvePlainScalar(const std::string& s) {
  if (In(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (In(s, {"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})) return true;
  if (In(s, {"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"})) {
    return false;
  }
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  auto as_int = [&](const std::string& text, int base) -> nlohmann::json {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, base);
    if (errno == ERANGE || end == nullptr || *end != '\0') {
      double d = std::strtod(digits.c_str(), nullptr);
      return d;
    }
    return v;
  };
  if (MatchesYamlHex(s)) return as_int(digits, 16);
  if (s.size() > 1 && MatchesYamlOctal(s) && (s[0] == '0' || s[1] == '0')) {
    std::string t = digits;
    // strip "0o" prefix (keep sign)
    auto pos = t.find("0o");
    if (pos != std::string::npos) t.erase(pos, 2);
    return as_int(t, 8);
  }
  if (MatchesYamlDecimal(s)) return as_int(digits, 10);
  if (MatchesYamlFloat(s)) return std::strtod(digits.c_str(), nullptr);
  // .inf / .nan have no JSON form; keep them as text.
  return s;
}

// yaml-cpp 0.7 (Debian 12) loops forever in LoadAll, allocating a null document each time,
// when a document starts with a token its parser does not consume: a ',' outside [ ] and { }
// (",", "--- ,", "'a' ,"). Every real document consumes at least one token, so two documents
// that start at the same place mean no progress: this pass of the (non-allocating) event
// parser throws there, before LoadAll runs. Costs a second scan of the text.
class ProgressCheck : public YAML::EventHandler {
 public:
  static void Run(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    ProgressCheck check;
    while (parser.HandleNextDocument(check)) {
    }
  }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (started_ && mark.pos == last_.pos) {
      throw YAML::ParserException(mark, "unexpected token (a ',' outside [ ] or { }?)");
    }
    started_ = true;
    last_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  bool started_ = false;
  YAML::Mark last_;
};

class Converter {
 public:
  Converter(YamlDocument& doc, size_t max_depth) : doc_(doc), max_depth_(max_depth) {}

  // `depth`: the collections above `node`. Recursion stays within max_depth levels: the exact
  // check here backs up the text scan (CheckYamlShape), which is an estimate.
  Status Convert(const YAML::Node& node, const std::string& pointer, nlohmann::json& out,
                 size_t depth) {
    if (++count_ > kMaxValues) {
      return InvalidArgument("document too large: more than " + std::to_string(kMaxValues) +
                             " values (nested aliases?)");
    }
    if ((node.IsSequence() || node.IsMap()) && depth + 1 > max_depth_) {
      return InvalidArgument("line " + std::to_string(node.Mark().line + 1) +
                             ": nests deeper than " + std::to_string(max_depth_) + " levels");
    }
    if (node.Mark().line >= 0) doc_.lines.emplace(pointer, node.Mark().line + 1);
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out = nullptr;
        return Status::Ok();
      case YAML::NodeType::Scalar: {
        const std::string& tag = node.Tag();
        const std::string& text = node.Scalar();
        // JSON strings must be UTF-8 (dump() throws on anything else); go-yaml, which
        // Kubernetes tools use, refuses such text too.
        if (!IsValidUtf8(text)) return NotUtf8(node);
        if (tag == "!" || tag == "tag:yaml.org,2002:str") out = text;
        else if (tag == "?" || tag.empty()) out = ResolvePlainScalar(text);
        else if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                 tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
          out = ResolvePlainScalar(text);
        } else {
          out = text;  // unknown tags: keep the text
        }
        return Status::Ok();
      }
      case YAML::NodeType::Sequence: {
        out = nlohmann::json::array();
        size_t i = 0;
        for (const auto& item : node) {
          nlohmann::json v;
          Status s = Convert(item, pointer + "/" + std::to_string(i), v, depth + 1);
          if (!s.ok()) return s;
          out.push_back(std::move(v));
          ++i;
        }
        return Status::Ok();
      }
      case YAML::NodeType::Map: {
        out = nlohmann::json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            return InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                   ": mapping keys must be scalars");
          }
          std::string key = kv.first.Scalar();
          if (!IsValidUtf8(key)) return NotUtf8(kv.first);
          if (out.contains(key)) {
            return InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                   ": duplicate key " + Quoted(key));
          }
          nlohmann::json v;
          Status s = Convert(kv.second, pointer + "/" + EscapePointerToken(key), v, depth + 1);
          if (!s.ok()) return s;
          out[key] = std::move(v);
        }
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

 private:
  static Status NotUtf8(const YAML::Node& node) {
    return InvalidArgument("line " + std::to_string(node.Mark().line + 1) +
                           ": text that is not valid UTF-8");
  }

  YamlDocument& doc_;
  const size_t max_depth_;
  size_t count_ = 0;
};

}  // namespace

StatusOr<std::vector<YamlDocument>> ParseYamlStream(std::string_view text, ShapeLimits limits) {
  if (auto refused = CheckYamlShape(text, limits, "the input")) return RefusalStatus(*refused);
  std::vector<YAML::Node> nodes;
  try {
    const std::string copy(text);
    ProgressCheck::Run(copy);
    nodes = YAML::LoadAll(copy);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard, for nesting the text scan did not see ("bad file" otherwise).
    return InvalidArgument("line " + std::to_string(e.mark.line + 1) + ": nests deeper than " +
                           std::to_string(limits.max_depth) + " levels");
  } catch (const YAML::Exception& e) {
    std::string msg = e.msg;
    if (!e.mark.is_null()) {
      return InvalidArgument("YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                             ", column " + std::to_string(e.mark.column + 1) + ": " + msg);
    }
    return InvalidArgument("YAML syntax error: " + msg);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("YAML could not be read: ") + e.what());
  }
  std::vector<YamlDocument> docs;
  for (const auto& node : nodes) {
    if (!node.IsDefined() || node.IsNull()) continue;  // empty document between '---'
    YamlDocument doc;
    doc.first_line = node.Mark().line + 1;
    Converter conv(doc, limits.max_depth);
    Status s;
    try {
      s = conv.Convert(node, "", doc.value, 0);
    } catch (const YAML::Exception& e) {
      s = InvalidArgument("YAML error at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!s.ok()) return s;
    docs.push_back(std::move(doc));
  }
  return docs;
}

StatusOr<YamlDocument> ParseYamlDocument(std::string_view text, ShapeLimits limits) {
  auto docs = ParseYamlStream(text, limits);
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1) {
    return InvalidArgument("expected exactly one YAML document, found " +
                           std::to_string(docs->size()));
  }
  return std::move(docs->front());
}

int LineOf(const YamlDocument& doc, const std::string& pointer) {
  std::string p = pointer;
  while (true) {
    auto it = doc.lines.find(p);
    if (it != doc.lines.end()) return it->second;
    if (p.empty()) return 0;
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? "" : p.substr(0, slash);
  }
}

}  // namespace kpc::policy
