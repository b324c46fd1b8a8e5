#include "cli/command_line.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "policy/units.h"

namespace kpc::cli {
namespace {

// Help lines are wrapped by hand at about this width; the default note goes on a line of its
// own when it would make a line longer.
constexpr size_t kHelpWidth = 110;

// Help laid out as usage, groups of flags, commands, footer; each flag's line shows its value
// name and, after the description, its default and environment variable as the option holds
// them, so the text cannot drift from what the parser does.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode mode) const override {
    std::string out = app->get_description();
    for (const std::string& group : app->get_groups()) {
      auto opts = app->get_options(
          [&group](const CLI::Option* o) { return o->get_group() == group && o->nonpositional(); });
      if (!group.empty() && !opts.empty()) out += make_group(group, false, opts);
    }
    out += make_subcommands(app, mode);
    if (!app->get_footer().empty()) out += "\n" + app->get_footer() + "\n";
    return out;
  }

  // Long names first: "--policy, -p".
  std::string make_option_name(const CLI::Option* opt, bool) const override {
    std::string out;
    for (const auto& n : opt->get_lnames()) out += (out.empty() ? "--" : ", --") + n;
    for (const auto& n : opt->get_snames()) out += (out.empty() ? "-" : ", -") + n;
    return out;
  }

  std::string make_option_opts(const CLI::Option* opt) const override {
    const std::string& text = opt->get_option_text();
    if (text.empty()) return "";
    return text[0] == '[' ? text : " " + text;  // "--leader-elect[=false]"
  }

  std::string make_option_desc(const CLI::Option* opt) const override {
    std::vector<std::string> notes;
    if (opt->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll)
      notes.push_back("repeatable");
    const std::string def = opt->get_default_str();
    const std::string env = opt->get_envname();
    if (!env.empty()) {
      notes.push_back("default $" + env + (def.empty() ? "" : ", else " + def));
    } else if (!def.empty()) {
      notes.push_back("default " + def);
    }
    std::string out = opt->get_description();
    if (notes.empty()) return out;
    std::string note = "(";
    for (size_t i = 0; i < notes.size(); ++i) note += (i ? "; " : "") + notes[i];
    note += ")";
    if (out.empty()) return note;
    const size_t last_line = out.size() - (out.rfind('\n') + 1);  // npos + 1 == 0
    const bool fits = get_column_width() + last_line + 1 + note.size() <= kHelpWidth;
    return out + (fits ? " " : "\n") + note;
  }
};

// "a", "a or b", "a, b or c"
std::string OneOf(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += choices[i];
  }
  return out;
}

std::string Quoted(const std::string& v) { return "\"" + v + "\""; }

// The whole text as a finite number, or nullopt.
std::optional<double> ParseNumber(const std::string& v) {
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::string FormatNumber(double d) {
  std::ostringstream out;
  out.precision(std::numeric_limits<double>::max_digits10);
  out << d;
  return out.str();
}

// "1h0m0s" -> "1h", "10m0s" -> "10m", "1m30s" unchanged.
std::string ShortDuration(int64_t ns) {
  std::string s = policy::FormatGoDuration(ns);
  if (s.ends_with("m0s")) s.resize(s.size() - 2);
  if (s.ends_with("h0m")) s.resize(s.size() - 2);
  return s;
}

// "4Mi" for 4194304 (the largest binary unit that divides it), else the number.
std::string ShortBytes(int64_t bytes) {
  for (auto [unit, factor] :
       {std::pair{"Gi", int64_t{1} << 30}, {"Mi", int64_t{1} << 20}, {"Ki", int64_t{1} << 10}}) {
    if (bytes >= factor && bytes % factor == 0) return std::to_string(bytes / factor) + unit;
  }
  return std::to_string(bytes);
}

// "4194304", "4096Ki", "4Mi", "1Gi"; nullopt for anything else or past int64.
std::optional<int64_t> ParseBytes(const std::string& v) {
  size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  if (digits == 0 || digits > 18) return std::nullopt;
  const int64_t n = std::stoll(v.substr(0, digits));
  const std::string suffix = v.substr(digits);
  int shift = 0;
  if (suffix == "Ki")
    shift = 10;
  else if (suffix == "Mi")
    shift = 20;
  else if (suffix == "Gi")
    shift = 30;
  else if (!suffix.empty())
    return std::nullopt;
  if (n > (std::numeric_limits<int64_t>::max() >> shift)) return std::nullopt;
  return n << shift;
}

// Rewrites each `--flag=` of an option taking a value into `--flag` "" (CLI11 would take the
// next word as the value). The word after `--flag`/`-f` is a value and stays as it is, and so
// does everything after `--`.
StatusOr<std::vector<std::string>> SplitEmptyInlineValues(const CLI::App& app,
                                                          std::vector<std::string> args) {
  std::vector<std::string> out;
  bool value_next = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string& a = args[i];
    if (value_next) {
      value_next = false;
      out.push_back(std::move(a));
      continue;
    }
    if (a == "--") {
      out.insert(out.end(), std::make_move_iterator(args.begin() + i),
                 std::make_move_iterator(args.end()));
      break;
    }
    const bool is_long = a.size() > 2 && a.starts_with("--");
    const bool is_short = a.size() == 2 && a[0] == '-' && a[1] != '-';
    const auto eq = is_long ? a.find('=') : std::string::npos;
    const std::string name = is_long || is_short ? a.substr(0, eq) : "";
    const CLI::Option* opt = name.empty() ? nullptr : app.get_option_no_throw(name);
    const bool takes_value = opt != nullptr && opt->get_items_expected_max() > 0;
    if (opt != nullptr && eq != std::string::npos && eq + 1 == a.size()) {
      if (!takes_value) return InvalidArgument(name + ": must be true or false, got \"\"");
      out.push_back(name);
      out.emplace_back();
      continue;
    }
    value_next = takes_value && eq == std::string::npos;
    out.push_back(std::move(a));
  }
  return out;
}

// CLI11 reports a flag at the end of the line without its value as "--name: 1 required FILE
// missing"; say what to write instead.
std::string MissingValueMessage(const CLI::App& app, const std::string& what) {
  const std::string name = what.substr(0, what.find(": "));
  const CLI::Option* opt = app.get_option_no_throw(name);
  if (opt == nullptr || what.find(" missing") == std::string::npos) return what;
  const std::string value = opt->get_option_text().empty() ? "VALUE" : opt->get_option_text();
  return name + " needs a value: " + name + " " + value + " or " + name + "=" + value;
}

CLI::Validator Rule(std::function<std::string(std::string&)> fn) {
  return CLI::Validator(std::move(fn), "");
}

}  // namespace

void ConfigureApp(CLI::App& app, std::string usage, std::size_t help_column) {
  auto formatter = std::make_shared<HelpFormatter>();
  formatter->column_width(help_column);
  app.formatter(formatter);
  app.description(std::move(usage));
  app.set_help_flag("-h,--help", "print this help")->group("");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Left-over words are reported by ParseCommandLine, naming the first.
  app.allow_extras();
}

StatusOr<std::optional<std::string>> ParseCommandLine(CLI::App& app,
                                                      const std::vector<std::string>& args) {
  auto split = SplitEmptyInlineValues(app, args);
  if (!split.ok()) return split.status();
  std::vector<std::string> reversed(split->rbegin(), split->rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return std::optional<std::string>(app.help());
  } catch (const CLI::ArgumentMismatch& e) {
    return InvalidArgument(MissingValueMessage(app, e.what()));
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(e.what());
  }
  if (auto extra = app.remaining(); !extra.empty()) {
    const std::string& word = extra.front();
    return InvalidArgument(word.starts_with("-")
                               ? "unknown flag " + Quoted(word)
                               : "unexpected argument " + Quoted(word) + " (flags start with --)");
  }
  return std::optional<std::string>();
}

StatusOr<std::optional<std::string>> ReadCommandLine(const CommandText& text,
                                                     const std::vector<std::string>& args,
                                                     const std::function<void(CLI::App&)>& add,
                                                     const std::function<Status()>& validate) {
  CLI::App app;
  ConfigureApp(app, text.usage, text.help_column);
  if (!text.footer.empty()) app.footer(text.footer);
  add(app);
  auto help = ParseCommandLine(app, args);
  if (!help.ok() || *help) return help;
  if (Status s = validate(); !s.ok()) return s;
  return help;
}

int ReportUsageError(std::ostream& err, const Status& error, std::string_view command) {
  err << "error: " << error.message() << "\n\nRun '" << command << " --help' for usage.\n";
  return 2;
}

CLI::Option* AddText(CLI::App& app, const std::string& name, std::string& out,
                     const std::string& value_name, const std::string& description) {
  CLI::Option* opt =
      app.add_option(name, out, description)->option_text(value_name)->type_name(value_name);
  if (!out.empty()) opt->default_str(out);
  return opt;
}

CLI::Option* AddChoice(CLI::App& app, const std::string& name, std::string& out,
                       const std::string& value_name, const std::vector<std::string>& choices,
                       const std::string& description, const std::vector<std::string>& aliases) {
  return AddText(app, name, out, value_name, description)
      ->check(Rule([choices, aliases](std::string& v) {
        for (const auto* list : {&choices, &aliases}) {
          for (const auto& c : *list) {
            if (v == c) return std::string();
          }
        }
        return "must be " + OneOf(choices) + ", got " + Quoted(v);
      }));
}

CLI::Option* AddRepeated(CLI::App& app, const std::string& name, std::vector<std::string>& out,
                         const std::string& value_name, const std::string& description) {
  return app.add_option(name, out, description)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false)  // one value per occurrence: `--flag a b` leaves b over
      ->option_text(value_name)
      ->type_name(value_name)
      ->check(Rule([value_name](std::string& v) {
        return v.empty() ? "needs a " + value_name + ", got \"\"" : "";
      }));
}

CLI::Option* AddBool(CLI::App& app, const std::string& name, bool& out,
                     const std::string& description) {
  CLI::Option* opt = app.add_flag(name, out, description)->check(Rule([](std::string& v) {
    return v == "true" || v == "false" ? std::string() : "must be true or false, got " + Quoted(v);
  }));
  if (out) opt->option_text("[=false]")->default_str("true");
  return opt;
}

CLI::Option* AddPositiveNumber(CLI::App& app, const std::string& name, double& out,
                               const std::string& description) {
  return app.add_option(name, out, description)
      ->option_text("N")
      ->type_name("N")
      ->default_str(FormatNumber(out))
      ->transform(Rule([](std::string& v) {
        auto d = ParseNumber(v);
        if (!d || *d <= 0) return "must be a positive number, got " + Quoted(v);
        v = FormatNumber(*d);
        return std::string();
      }));
}

CLI::Option* AddPositiveInt(CLI::App& app, const std::string& name, int& out,
                            const std::string& description) {
  return app.add_option(name, out, description)
      ->option_text("N")
      ->type_name("N")
      ->default_str(std::to_string(out))
      ->transform(Rule([](std::string& v) {
        auto d = ParseNumber(v);
        if (!d || *d <= 0 || *d != std::floor(*d) || *d > std::numeric_limits<int>::max()) {
          return "must be a positive whole number, got " + Quoted(v);
        }
        v = std::to_string(static_cast<int>(*d));
        return std::string();
      }));
}

CLI::Option* AddByteSize(CLI::App& app, const std::string& name, int64_t& out, int64_t min,
                         int64_t max, const std::string& description) {
  return app.add_option(name, out, description)
      ->option_text("BYTES")
      ->type_name("BYTES")
      ->default_str(ShortBytes(out))
      ->transform(Rule([min, max](std::string& v) {
        auto bytes = ParseBytes(v);
        if (!bytes || *bytes < min || *bytes > max) {
          return "must be a size from " + ShortBytes(min) + " to " + ShortBytes(max) +
                 " like 4Mi or 4194304, got " + Quoted(v);
        }
        v = std::to_string(*bytes);
        return std::string();
      }));
}

CLI::Option* AddDuration(CLI::App& app, const std::string& name, int64_t& out_ns,
                         const std::string& description) {
  return app.add_option(name, out_ns, description)
      ->option_text("DURATION")
      ->type_name("DURATION")
      ->default_str(ShortDuration(out_ns))
      ->transform(Rule([](std::string& v) {
        auto ns = policy::ParseGoDuration(v);
        if (!ns || *ns <= 0)
          return "must be a positive duration like 10s or 1h30m, got " + Quoted(v);
        v = std::to_string(*ns);
        return std::string();
      }));
}

}  // namespace kpc::cli
