// Internal: clang's thread-safety annotations (checked with -Wthread-safety), and a mutex and a lock that
// carry them. Other compilers ignore the annotations.
#pragma once

#include <mutex>

#if defined(__clang__)
#define EVS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define EVS_THREAD_ANNOTATION(x)
#endif

#define EVS_CAPABILITY(x) EVS_THREAD_ANNOTATION(capability(x))
#define EVS_SCOPED_CAPABILITY EVS_THREAD_ANNOTATION(scoped_lockable)
#define EVS_GUARDED_BY(x) EVS_THREAD_ANNOTATION(guarded_by(x))
#define EVS_EXCLUDES(...) EVS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define EVS_ACQUIRE(...) EVS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define EVS_RELEASE(...) EVS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))

namespace evs::detail {

class EVS_CAPABILITY("mutex") Mutex {
 public:
  void lock() EVS_ACQUIRE() { mutex_.lock(); }
  void unlock() EVS_RELEASE() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

// Holds `mutex` from construction until unlock() or destruction.
class EVS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) EVS_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() EVS_RELEASE() {
    if (held_) mutex_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  void unlock() EVS_RELEASE() {
    mutex_.unlock();
    held_ = false;
  }

 private:
  Mutex& mutex_;
  bool held_ = true;
};

}  // namespace evs::detail
