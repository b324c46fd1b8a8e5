#pragma once
// Test helper: the flags listed under each heading of a command's --help text.

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace kpc::cli::help_text {

// Heading ("Logging") -> the flags whose lines start under it ("--log-format", ...), in order.
// A heading is an unindented line ending in ':'; a flag line is indented and starts with "--"
// (its first long name counts).
inline std::map<std::string, std::vector<std::string>> HelpGroups(const std::string& help) {
  std::map<std::string, std::vector<std::string>> groups;
  std::istringstream lines(help);
  std::string heading;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != ' ' && line.back() == ':') {
      heading = line.substr(0, line.size() - 1);
      continue;
    }
    if (line.empty() || line[0] != ' ') {
      heading.clear();  // a paragraph after the flags (the footer)
      continue;
    }
    const auto start = line.find_first_not_of(' ');
    if (heading.empty() || line.compare(start, 2, "--") != 0) continue;
    const auto end = line.find_first_of(" ,[", start);
    groups[heading].push_back(line.substr(start, end - start));
  }
  return groups;
}

// The help line (and its continuation lines) of `flag`, or "" when it is not listed.
inline std::string HelpEntry(const std::string& help, const std::string& flag) {
  std::istringstream lines(help);
  std::string entry;
  bool in = false;
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find_first_not_of(' ');
    const bool flag_line = start == 2 && line.compare(2, 2, "--") == 0;
    if (flag_line) {
      if (in) break;
      const auto end = line.find_first_of(" ,[", 2);
      in = line.substr(2, end - 2) == flag;
    } else if (in && (start == std::string::npos || start < 4)) {
      break;
    }
    if (in) entry += line + "\n";
  }
  return entry;
}

}  // namespace kpc::cli::help_text
