// The Dispatcher against a fake worker group: a DEALER socket in this process that speaks
// the wire protocol by hand. No model, no worker process.
#include "router/dispatcher.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

namespace strata::router {
namespace {

using std::chrono::milliseconds;

class FakeWorker {
 public:
  FakeWorker(const std::string& endpoint, const std::string& group_id) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::routing_id, group_id);
    socket_.connect(endpoint);
  }
  void send_bytes(const std::string& bytes) { socket_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  void send(const wire::Message& message) { send_bytes(wire::encode(message)); }
  // The next message from the dispatcher, or nullopt after `timeout`.
  std::optional<wire::Message> receive(milliseconds timeout) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, timeout) == 0) return std::nullopt;
    zmq::message_t frame;
    if (!socket_.recv(frame)) return std::nullopt;
    StatusOr<wire::Message> message = wire::decode(frame.to_string_view());
    EXPECT_TRUE(message.ok()) << message.status().to_string();
    if (!message.ok()) return std::nullopt;
    return std::move(message).value();
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};
};

wire::Hello hello(const std::string& group_id, uint64_t instance_id) {
  return {.group_id = group_id, .model_name = "fake", .instance_id = instance_id,
          .max_model_len = 128, .vocab_size = 100, .block_size = 16, .total_blocks = 64,
          .ready = true};
}

wire::WireRequest request(uint64_t id) {
  wire::WireRequest r;
  r.id = id;
  r.prompt_ids = {1, 2, 3};
  return r;
}

bool wait_until(const std::function<bool()>& pred, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

struct Outputs {
  std::mutex mu;
  std::map<uint64_t, std::vector<wire::TokenOutput>> by_id;
  OutputCallback callback() {
    return [this](const wire::TokenOutput& out) {
      std::lock_guard lock(mu);
      by_id[out.id].push_back(out);
    };
  }
  std::vector<wire::TokenOutput> of(uint64_t id) {
    std::lock_guard lock(mu);
    return by_id[id];
  }
  bool finished(uint64_t id) {
    std::lock_guard lock(mu);
    auto it = by_id.find(id);
    return it != by_id.end() && !it->second.empty() && it->second.back().finished();
  }
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dispatcher_.start().ok());
    endpoint_ = dispatcher_.endpoint();
  }
  Outputs outputs;  // declared first: outlives the dispatcher, whose stop() still calls back
  Dispatcher dispatcher_{DispatcherConfig{.endpoint = "tcp://127.0.0.1:*", .heartbeat_timeout_ms = 400}};
  std::string endpoint_;
};

TEST_F(DispatcherTest, SubmitToAnUnknownGroupIsUnavailable) {
  const Status st = dispatcher_.submit_to("g0", request(1), outputs.callback());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("`g0` is not registered"), std::string::npos) << st.message();
  EXPECT_FALSE(dispatcher_.any_ready());
}

TEST_F(DispatcherTest, IgnoresGarbageRegistersOnHelloAndRoutesOutputs) {
  FakeWorker worker(endpoint_, "g0");
  worker.send_bytes("not msgpack at all");
  worker.send_bytes(std::string("\xdd\xff\xff\xff\xff", 5));
  worker.send(wire::Heartbeat{.group_id = "g0"});  // before Hello: ignored
  worker.send(hello("g0", 1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));

  for (uint64_t id = 0; id < 5; ++id) {
    ASSERT_TRUE(dispatcher_.submit_to("g0", request(id), outputs.callback()).ok());
  }
  std::vector<uint64_t> received;
  while (received.size() < 5) {
    std::optional<wire::Message> m = worker.receive(milliseconds(2000));
    ASSERT_TRUE(m.has_value()) << "got " << received.size() << " of 5 requests";
    ASSERT_TRUE(std::holds_alternative<wire::AddRequests>(*m));
    for (const wire::WireRequest& r : std::get<wire::AddRequests>(*m).requests) {
      received.push_back(r.id);
      EXPECT_GT(r.arrival_unix_ms, 0);
    }
  }
  EXPECT_EQ(received, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(dispatcher_.groups().at(0).num_in_flight, 5);

  // A token for 0, a finish for 1, and a token for an id the dispatcher never sent.
  wire::StepOutputs step{.group_id = "g0", .step = 1};
  step.kv = {.total_blocks = 64, .free_blocks = 60, .num_running = 4};
  step.num_batched_tokens = 5;
  step.outputs.push_back({.id = 0, .token_ids = {7}, .num_output_tokens = 1});
  step.outputs.push_back({.id = 1, .token_ids = {8}, .finish_reason = "stop", .num_output_tokens = 1});
  step.outputs.push_back({.id = 999, .token_ids = {9}});
  worker.send(step);
  std::optional<wire::Message> m = worker.receive(milliseconds(2000));
  ASSERT_TRUE(m.has_value());
  ASSERT_TRUE(std::holds_alternative<wire::Abort>(*m));
  EXPECT_EQ(std::get<wire::Abort>(*m).ids, (std::vector<uint64_t>{999}));
  ASSERT_TRUE(wait_until([&] { return outputs.finished(1) && !outputs.of(0).empty(); }, milliseconds(2000)));
  EXPECT_EQ(outputs.of(0).at(0).token_ids, (std::vector<int32_t>{7}));
  EXPECT_EQ(outputs.of(1).size(), 1u);
  const GroupInfo info = dispatcher_.groups().at(0);
  EXPECT_EQ(info.kv.free_blocks, 60);
  EXPECT_EQ(info.last_num_batched_tokens, 5);
  EXPECT_EQ(info.num_output_tokens, 2u);
  EXPECT_EQ(info.num_in_flight, 4);

  // Abort of a sent request goes to the worker; the request finishes when the worker says so.
  dispatcher_.abort(2);
  m = worker.receive(milliseconds(2000));
  ASSERT_TRUE(m.has_value());
  ASSERT_TRUE(std::holds_alternative<wire::Abort>(*m));
  EXPECT_EQ(std::get<wire::Abort>(*m).ids, (std::vector<uint64_t>{2}));
  EXPECT_FALSE(outputs.finished(2));
  worker.send(wire::StepOutputs{.group_id = "g0", .step = 2, .outputs = {{.id = 2, .finish_reason = "abort"}}});
  ASSERT_TRUE(wait_until([&] { return outputs.finished(2); }, milliseconds(2000)));

  // The same group id with a new instance id is a restarted worker: what it held fails.
  worker.send(hello("g0", 2));
  ASSERT_TRUE(wait_until([&] { return outputs.finished(0) && outputs.finished(3) && outputs.finished(4); },
                         milliseconds(2000)));
  EXPECT_EQ(outputs.of(3).back().finish_reason, "error");
  EXPECT_EQ(outputs.of(3).back().error, "worker group g0 restarted; retry the request");
  EXPECT_TRUE(dispatcher_.any_ready());
}

TEST_F(DispatcherTest, ASecondConnectionWithALiveGroupsIdNeitherDisplacesItNorGetsWork) {
  FakeWorker real(endpoint_, "g0");
  real.send(hello("g0", 1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));

  FakeWorker twin(endpoint_, "g0");
  for (int i = 0; i < 20; ++i) {
    twin.send(hello("g0", 2));  // as a restarted worker would: a new instance id
    real.send(wire::Heartbeat{.group_id = "g0"});
    std::this_thread::sleep_for(milliseconds(50));
  }
  // The real group is untouched: still the only one, the same instance, and it gets the work.
  const auto groups = dispatcher_.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].group_id, "g0");
  EXPECT_EQ(groups[0].instance_id, 1u);
  EXPECT_TRUE(groups[0].alive);
  ASSERT_TRUE(dispatcher_.submit_to("g0", request(7), outputs.callback()).ok());
  bool delivered = false;
  for (int i = 0; i < 20 && !delivered; ++i) {
    auto m = real.receive(milliseconds(100));
    auto* add = m ? std::get_if<wire::AddRequests>(&*m) : nullptr;
    delivered = add != nullptr && !add->requests.empty() && add->requests[0].id == 7;
  }
  EXPECT_TRUE(delivered);
  EXPECT_FALSE(twin.receive(milliseconds(200))) << "the twin was sent something";
}

TEST_F(DispatcherTest, AHelloNamingAnotherGroupIsRefusedAndToldWhy) {
  FakeWorker worker(endpoint_, "a");
  worker.send(hello("b", 1));
  const auto reply = worker.receive(milliseconds(2000));
  ASSERT_TRUE(reply);
  const auto* bye = std::get_if<wire::Shutdown>(&*reply);
  ASSERT_NE(bye, nullptr);
  EXPECT_NE(bye->reason.find("`b`"), std::string::npos) << bye->reason;
  EXPECT_TRUE(dispatcher_.groups().empty());
}

TEST_F(DispatcherTest, AModelWithFewerTokensThanTheTokenizerIsRefused) {
  Dispatcher strict(DispatcherConfig{.endpoint = "tcp://127.0.0.1:*", .tokenizer_vocab_size = 101});
  ASSERT_TRUE(strict.start().ok());
  FakeWorker worker(strict.endpoint(), "g0");
  worker.send(hello("g0", 1));  // vocab 100
  const auto reply = worker.receive(milliseconds(2000));
  ASSERT_TRUE(reply);
  const auto* bye = std::get_if<wire::Shutdown>(&*reply);
  ASSERT_NE(bye, nullptr);
  EXPECT_NE(bye->reason.find("a vocabulary of 100 tokens, but the router's tokenizer has 101"), std::string::npos)
      << bye->reason;
  EXPECT_TRUE(strict.groups().empty());
}

TEST_F(DispatcherTest, HeartbeatsFromAnotherConnectionDoNotKeepAGroupAlive) {
  FakeWorker real(endpoint_, "g0");
  FakeWorker other(endpoint_, "x");
  real.send(hello("g0", 1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
  // `real` goes silent; `other` speaks for it, which must not count (timeout 400 ms).
  const bool died = wait_until([&] {
    other.send(wire::Heartbeat{.group_id = "g0"});
    return !dispatcher_.groups().at(0).alive;
  }, milliseconds(1500));
  EXPECT_TRUE(died);
}

TEST_F(DispatcherTest, SilentGroupDiesAndRequestsGoWhereSubmitToSays) {
  FakeWorker a(endpoint_, "a");
  FakeWorker b(endpoint_, "b");
  a.send(hello("a", 1));
  b.send(hello("b", 1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.groups().size() == 2; }, milliseconds(2000)));
  // The caller (the router's scheduler) places; the dispatcher only carries: three to `b`.
  ASSERT_TRUE(dispatcher_.submit_to("a", request(0), outputs.callback()).ok());
  for (uint64_t id = 1; id < 4; ++id) {
    ASSERT_TRUE(dispatcher_.submit_to("b", request(id), outputs.callback()).ok());
  }
  EXPECT_EQ(dispatcher_.groups().at(0).num_in_flight, 1);
  EXPECT_EQ(dispatcher_.groups().at(1).num_in_flight, 3);

  // Only `a` keeps sending heartbeats; `b` goes silent and its three requests fail.
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint64_t> failed;
  while (std::chrono::steady_clock::now() - start < milliseconds(1500) && failed.size() < 3) {
    a.send(wire::Heartbeat{.group_id = "a"});
    std::this_thread::sleep_for(milliseconds(50));
    failed.clear();
    for (uint64_t id = 0; id < 4; ++id) {
      if (outputs.finished(id)) failed.push_back(id);
    }
  }
  ASSERT_EQ(failed, (std::vector<uint64_t>{1, 2, 3}));
  for (uint64_t id : failed) {
    EXPECT_EQ(outputs.of(id).back().error, "worker group b stopped answering; retry the request");
  }
  for (const GroupInfo& g : dispatcher_.groups()) {
    EXPECT_EQ(g.alive, g.group_id == "a") << g.group_id;
  }
  const Status to_dead = dispatcher_.submit_to("b", request(10), outputs.callback());
  EXPECT_EQ(to_dead.code(), StatusCode::kUnavailable);
  EXPECT_NE(to_dead.message().find("not alive and ready"), std::string::npos) << to_dead.message();
  ASSERT_TRUE(dispatcher_.submit_to("a", request(10), outputs.callback()).ok());
  EXPECT_EQ(dispatcher_.groups().at(0).num_in_flight, 2);
}

TEST_F(DispatcherTest, StopFinishesEverythingInFlight) {
  FakeWorker worker(endpoint_, "g0");
  worker.send(hello("g0", 1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
  ASSERT_TRUE(dispatcher_.submit_to("g0", request(1), outputs.callback()).ok());
  dispatcher_.stop();
  ASSERT_TRUE(outputs.finished(1));
  EXPECT_EQ(outputs.of(1).back().finish_reason, "error");
  EXPECT_EQ(dispatcher_.submit_to("g0", request(2), outputs.callback()).code(),
            StatusCode::kUnavailable);
}

wire::Hello two_rank_hello(uint64_t instance_id) {
  wire::Hello h = hello("g0", instance_id);
  h.tp = 2;
  return h;
}

// The driver of a group whose follower died is blocked in a collective: still connected,
// still sending heartbeats. The follower's own connection says it is gone.
TEST_F(DispatcherTest, AGroupIsDeadTheMomentOneOfItsRanksIsGoneAndStaysDeadUntilARestart) {
  FakeWorker driver(endpoint_, "g0");
  std::optional<FakeWorker> rank1(std::in_place, endpoint_, wire::rank_identity("g0", 1));
  std::this_thread::sleep_for(milliseconds(100));  // followers connect before the driver's Hello
  driver.send(two_rank_hello(1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
  std::this_thread::sleep_for(milliseconds(100));  // the Hello's probe finds rank 1
  ASSERT_TRUE(dispatcher_.submit_to("g0", request(5), outputs.callback()).ok());
  rank1.reset();  // kill -9 of rank 1
  const bool died = wait_until([&] {
    driver.send(wire::Heartbeat{.group_id = "g0"});
    return !dispatcher_.groups().at(0).alive;
  }, milliseconds(1000));
  ASSERT_TRUE(died) << "not marked dead within 1 s of rank 1's death";
  ASSERT_TRUE(wait_until([&] { return outputs.finished(5); }, milliseconds(1000)));
  EXPECT_EQ(outputs.of(5).back().error, "worker group g0 failed: its rank 1 is gone (the process exited or was "
                                        "killed); retry the request");
  for (int i = 0; i < 10; ++i) {  // neither heartbeats nor a repeated Hello of that instance revive it
    driver.send(wire::Heartbeat{.group_id = "g0"});
    driver.send(two_rank_hello(1));
    std::this_thread::sleep_for(milliseconds(30));
  }
  EXPECT_FALSE(dispatcher_.groups().at(0).alive);
  EXPECT_FALSE(dispatcher_.submit_to("g0", request(6), outputs.callback()).ok());
  driver.send(hello("g0", 2));  // restarted: a new instance
  EXPECT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
}

// A connection that drops and comes back (the process lives: a network blip) must not leave
// the group dead for good.
TEST_F(DispatcherTest, AGroupWhoseRankConnectionComesBackServesAgain) {
  FakeWorker driver(endpoint_, "g0");
  std::optional<FakeWorker> rank1(std::in_place, endpoint_, wire::rank_identity("g0", 1));
  std::this_thread::sleep_for(milliseconds(100));
  driver.send(two_rank_hello(1));
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
  std::this_thread::sleep_for(milliseconds(100));
  rank1.reset();
  ASSERT_TRUE(wait_until([&] {
    driver.send(wire::Heartbeat{.group_id = "g0"});
    return !dispatcher_.groups().at(0).alive;
  }, milliseconds(1000)));
  rank1.emplace(endpoint_, wire::rank_identity("g0", 1));
  EXPECT_TRUE(wait_until([&] {
    driver.send(two_rank_hello(1));  // its periodic Hello: the same instance
    return dispatcher_.any_ready();
  }, milliseconds(2000)));
}

TEST_F(DispatcherTest, ARankThatNeverConnectedDoesNotFailItsGroup) {
  FakeWorker driver(endpoint_, "g0");
  driver.send(two_rank_hello(1));  // rank 1 cannot reach the router (another host, say)
  ASSERT_TRUE(wait_until([&] { return dispatcher_.any_ready(); }, milliseconds(2000)));
  { FakeWorker passer_by(endpoint_, "x"); passer_by.send(wire::Heartbeat{.group_id = "x"}); }  // a disconnect: probes
  const bool died = wait_until([&] {
    driver.send(wire::Heartbeat{.group_id = "g0"});
    return !dispatcher_.groups().at(0).alive;
  }, milliseconds(1000));
  EXPECT_FALSE(died);
}

}  // namespace
}  // namespace strata::router
