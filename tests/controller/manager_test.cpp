#include "controller/manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace kpc::controller {
namespace {

TEST(ManagerTest, LeaderComponentsRunOnlyWhileLeadingInOrderAndStopInReverse) {
  std::vector<std::string> log;
  Manager m;
  auto add = [&](const std::string& name, bool leader) {
    m.Add({name, leader, [&log, name] { log.push_back("start " + name); },
           [&log, name] { log.push_back("stop " + name); }});
  };
  add("informer", false);
  add("scheduler", true);
  add("workers", true);

  m.StartShared();
  EXPECT_EQ(log, std::vector<std::string>{"start informer"});

  log.clear();
  int polls = 0;
  m.RunLeader([&] { return ++polls > 2; }, [] { return false; });  // leads for two polls
  EXPECT_EQ(log, (std::vector<std::string>{"start scheduler", "start workers", "stop workers",
                                           "stop scheduler"}));

  // Leading again (a new term) starts them again; `done` ends a term too.
  log.clear();
  m.RunLeader([] { return false; }, [] { return true; });
  EXPECT_EQ(log, (std::vector<std::string>{"start scheduler", "start workers", "stop workers",
                                           "stop scheduler"}));

  log.clear();
  m.StopAll();
  EXPECT_EQ(log, (std::vector<std::string>{"stop workers", "stop scheduler", "stop informer"}));
}

}  // namespace
}  // namespace kpc::controller
