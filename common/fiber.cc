// Fibers: ucontext stacks switched on one loop thread (fiber.h says why).
//
// The loop's turn: start what was spawned, run what is posted, run every runnable fiber
// until it parks or ends, wake the sleepers whose time came or whose token was
// cancelled, then sleep in the Poller until the next timer (at most kCancelPollMs while a
// sleeper has a token to watch). Under AddressSanitizer and ThreadSanitizer every
// switch is announced to the sanitizer (the fiber APIs of sanitizer/*.h), so both follow
// a fiber's stack as they would a thread's.

#include "common/fiber.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/cancel.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define KPM_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define KPM_TSAN 1
#endif

namespace kpm::fiber {
namespace {

constexpr int64_t kCancelPollMs = 10;  // how often a sleeper's token is looked at
constexpr size_t kStacksKept = 32;     // freed stacks kept for the next fibers

using Steady = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now().time_since_epoch()).count();
}

/// One mapping: a guard page below the stack, so an overflow faults instead of
/// writing over a neighbour.
struct Stack {
  void* base = nullptr;  // the guard page
  size_t bytes = 0;      // guard included
  void* bottom() const { return static_cast<char*>(base) + Page(); }
  size_t size() const { return bytes - Page(); }
  static size_t Page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
};

Stack MapStack(size_t bytes) {
  Stack s;
  s.bytes = bytes + Stack::Page();
  s.base = mmap(nullptr, s.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                -1, 0);
  if (s.base == MAP_FAILED) std::abort();  // out of address space: nothing sane to do
  mprotect(s.base, Stack::Page(), PROT_NONE);
  return s;
}

/// The bottom of the loop thread's own stack, as ASan wants to be told on the way back.
struct StackBounds {
  const void* bottom = nullptr;
  size_t size = 0;
};

}  // namespace

struct Fiber {
  ucontext_t context{};
  Stack stack;
  std::function<void()> fn;
  bool done = false;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
};

struct Sleeper {
  Fiber* fiber = nullptr;
  const CancelToken* cancel = nullptr;
  bool* cancelled = nullptr;  // set when the token woke it
};

struct Loop::Impl {
  Loop* self = nullptr;
  Poller* poller = nullptr;

  // Shared with other threads, under mu.
  mutable std::mutex mu;
  std::condition_variable cv;  // the built-in Poller's sleep, and Stop's wait
  std::deque<std::function<void()>> spawned;
  std::deque<std::function<void()>> posted;
  bool woken = false;
  bool stopping = false;
  std::thread thread;
  std::thread::id thread_id;
  std::atomic<size_t> alive{0};

  // Loop thread only.
  ucontext_t main_context{};
  StackBounds main_stack;
  void* main_tsan_fiber = nullptr;
  Fiber* current = nullptr;
  std::deque<Fiber*> runnable;
  std::multimap<int64_t, Sleeper> timers;  // by due time (steady ms)
  std::vector<Stack> free_stacks;

  void Start();
  void Wake();
  void ThreadMain();
  void StartFiber(std::function<void()> fn);
  void SwitchTo(Fiber* f);
  void SwitchToMain(Fiber* f);
  void Finish(Fiber* f);
  void WakeSleepers();
  int64_t PollTimeout() const;
  static void Entry();
};

namespace {
thread_local Loop::Impl* tl_loop = nullptr;  // the loop whose thread this is
}

void Loop::Impl::Start() {
  // Under mu.
  if (thread.joinable() || stopping) return;
  thread = std::thread([this] { ThreadMain(); });
  thread_id = thread.get_id();
}

void Loop::Impl::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu);
    woken = true;
  }
  cv.notify_all();
  if (poller != nullptr) poller->Wake();
}

void Loop::Impl::Entry() {
  Impl* loop = tl_loop;
  Fiber* f = loop->current;
#if KPM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &loop->main_stack.bottom, &loop->main_stack.size);
#endif
  try {
    f->fn();
  } catch (...) {
    // fiber.h: the spawner catches its own; nothing may unwind past a fiber's entry.
  }
  f->fn = nullptr;
  f->done = true;
#if KPM_ASAN
  __sanitizer_start_switch_fiber(nullptr, loop->main_stack.bottom, loop->main_stack.size);
#endif
#if KPM_TSAN
  __tsan_switch_to_fiber(loop->main_tsan_fiber, 0);
#endif
  setcontext(&loop->main_context);
}

void Loop::Impl::StartFiber(std::function<void()> fn) {
  auto* f = new Fiber;
  f->fn = std::move(fn);
  if (!free_stacks.empty()) {
    f->stack = free_stacks.back();
    free_stacks.pop_back();
  } else {
    f->stack = MapStack(kStackBytes);
  }
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = f->stack.bottom();
  f->context.uc_stack.ss_size = f->stack.size();
  f->context.uc_link = nullptr;
  makecontext(&f->context, &Impl::Entry, 0);
#if KPM_TSAN
  f->tsan_fiber = __tsan_create_fiber(0);
#endif
  runnable.push_back(f);
}

void Loop::Impl::SwitchTo(Fiber* f) {
  current = f;
#if KPM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack.bottom(), f->stack.size());
#endif
#if KPM_TSAN
  __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
  swapcontext(&main_context, &f->context);
#if KPM_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  current = nullptr;
  if (f->done) Finish(f);
}

void Loop::Impl::SwitchToMain(Fiber* f) {
#if KPM_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake_stack, main_stack.bottom, main_stack.size);
#endif
#if KPM_TSAN
  __tsan_switch_to_fiber(main_tsan_fiber, 0);
#endif
  swapcontext(&f->context, &main_context);
#if KPM_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake_stack, &main_stack.bottom, &main_stack.size);
#endif
}

void Loop::Impl::Finish(Fiber* f) {
#if KPM_TSAN
  __tsan_destroy_fiber(f->tsan_fiber);
#endif
  if (free_stacks.size() < kStacksKept) {
    free_stacks.push_back(f->stack);
  } else {
    munmap(f->stack.base, f->stack.bytes);
  }
  delete f;
  if (alive.fetch_sub(1) == 1) {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();  // Stop may be waiting for the last one
  }
}

void Loop::Impl::WakeSleepers() {
  const int64_t now = NowMs();
  for (auto it = timers.begin(); it != timers.end();) {
    Sleeper& s = it->second;
    const bool cancelled = s.cancel != nullptr && s.cancel->cancelled();
    if (it->first <= now || cancelled) {
      if (cancelled && s.cancelled != nullptr) *s.cancelled = true;
      runnable.push_back(s.fiber);
      it = timers.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t Loop::Impl::PollTimeout() const {
  if (!runnable.empty()) return 0;
  int64_t timeout = -1;
  if (!timers.empty()) timeout = std::max<int64_t>(0, timers.begin()->first - NowMs());
  const bool watching = std::any_of(timers.begin(), timers.end(), [](const auto& t) { return t.second.cancel; });
  if (watching) timeout = timeout < 0 ? kCancelPollMs : std::min(timeout, kCancelPollMs);
  return timeout;
}

void Loop::Impl::ThreadMain() {
  tl_loop = this;
#if KPM_TSAN
  main_tsan_fiber = __tsan_get_current_fiber();
#endif
  for (;;) {
    std::deque<std::function<void()>> to_spawn;
    std::deque<std::function<void()>> to_run;
    {
      std::lock_guard<std::mutex> lock(mu);
      to_spawn.swap(spawned);
      to_run.swap(posted);
      woken = false;
      if (stopping && to_spawn.empty() && to_run.empty() && alive.load() == 0) break;
    }
    for (auto& fn : to_spawn) StartFiber(std::move(fn));
    for (auto& fn : to_run) fn();
    while (!runnable.empty()) {
      Fiber* f = runnable.front();
      runnable.pop_front();
      SwitchTo(f);
    }
    WakeSleepers();
    if (!runnable.empty()) continue;
    const int64_t timeout = PollTimeout();
    // Something to do at once: a spawn or post that raced in, or the last fiber of a
    // stopping loop has ended (the top of the turn then ends the thread).
    auto ready = [this] { return woken || !spawned.empty() || !posted.empty() || (stopping && alive.load() == 0); };
    if (poller != nullptr) {
      // The Poller is woken by Wake(); one that raced in makes this Poll return at once.
      bool pending = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        pending = ready();
      }
      poller->Poll(pending ? 0 : timeout);
    } else {
      std::unique_lock<std::mutex> lock(mu);
      if (timeout < 0) {
        cv.wait(lock, ready);
      } else if (timeout > 0) {
        cv.wait_for(lock, std::chrono::milliseconds(timeout), ready);
      }
    }
  }
  for (const Stack& s : free_stacks) munmap(s.base, s.bytes);
  free_stacks.clear();
  tl_loop = nullptr;
}

Loop::Loop() : impl_(std::make_unique<Impl>()) { impl_->self = this; }

Loop::~Loop() {
  Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Loop::SetPoller(Poller* poller) { impl_->poller = poller; }

void Loop::Spawn(std::function<void()> fn) {
  impl_->alive.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->spawned.push_back(std::move(fn));
    impl_->Start();
  }
  impl_->Wake();
}

void Loop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->posted.push_back(std::move(fn));
    impl_->Start();
  }
  impl_->Wake();
}

void Loop::Run(const std::function<void()>& fn) {
  if (Current() == this) {
    fn();
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Spawn([&] {
    fn();
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
}

void Loop::Stop() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  lock.unlock();
  impl_->Wake();
  if (std::this_thread::get_id() == impl_->thread_id) return;  // the loop ends after this turn
  impl_->thread.join();
}

size_t Loop::fibers() const { return impl_->alive.load(); }

Loop* Loop::Current() {
  Impl* loop = tl_loop;
  return (loop != nullptr && loop->current != nullptr) ? loop->self : nullptr;
}

Loop::FiberId Loop::Self() const { return impl_->current; }

void Loop::Park() {
  Fiber* f = impl_->current;
  impl_->SwitchToMain(f);
}

void Loop::Resume(FiberId fiber) { impl_->runnable.push_back(static_cast<Fiber*>(fiber)); }

bool SleepFor(int64_t ms, const CancelToken* cancel) {
  Loop* loop = Loop::Current();
  if (loop == nullptr) {
    if (cancel == nullptr) {
      if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return true;
    }
    return !cancel->WaitFor(std::chrono::milliseconds(std::max<int64_t>(ms, 0)));
  }
  if (cancel != nullptr && cancel->cancelled()) return false;
  bool cancelled = false;
  tl_loop->timers.emplace(NowMs() + std::max<int64_t>(ms, 0),
                          Sleeper{tl_loop->current, cancel, &cancelled});
  loop->Park();
  return !cancelled;
}

void ForEach(size_t count, size_t parallel, const std::function<void(size_t)>& fn) {
  if (count == 0) return;
  parallel = std::max<size_t>(1, std::min(parallel, count));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        fn(i);
      } catch (...) {
        // fiber.h: fn must not throw; if it does, the others still run and we return.
      }
    }
  };
  Loop* loop = Loop::Current();
  if (loop == nullptr) {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < parallel; ++t) threads.emplace_back(work);
    for (auto& t : threads) t.join();
    return;
  }
  // Workers on fibers of this loop; the caller parks until the last one is done.
  size_t running = parallel;
  Loop::FiberId caller = loop->Self();
  for (size_t t = 0; t < parallel; ++t) {
    loop->Spawn([&, loop, caller] {
      work();
      if (--running == 0) loop->Resume(caller);  // one thread: no lock needed
    });
  }
  loop->Park();
}

}  // namespace kpm::fiber
