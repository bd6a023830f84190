#include "sqlite_write_turn.hpp"

#include <algorithm>
#include <cerrno>
#include <thread>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evs::sqlite {
namespace {

constexpr off_t queue_byte = 0;
constexpr off_t turn_byte = 1;

// Locks (F_WRLCK) or unlocks (F_UNLCK) one byte without waiting. 0 or the errno (EAGAIN or EACCES: another
// description holds a conflicting lock).
int lock_byte(int fd, short type, off_t byte) noexcept {
#ifdef F_OFD_SETLK
  struct flock request {};
  request.l_type = type;
  request.l_whence = SEEK_SET;
  request.l_start = byte;
  request.l_len = 1;
  request.l_pid = 0;  // required for OFD locks
  while (fcntl(fd, F_OFD_SETLK, &request) != 0)
    if (errno != EINTR) return errno;
  return 0;
#else
  (void)fd, (void)type, (void)byte;
  return ENOSYS;
#endif
}

bool is_held_elsewhere(int error) noexcept { return error == EAGAIN || error == EACCES; }

// Locks one byte, retrying every WriteTurn::poll_interval while another description holds it, until
// `deadline`. 0 or the errno of the last try.
int lock_byte_until(int fd, off_t byte, std::chrono::steady_clock::time_point deadline) noexcept {
  for (;;) {
    const int error = lock_byte(fd, F_WRLCK, byte);
    if (!is_held_elsewhere(error)) return error;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return error;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(WriteTurn::poll_interval, deadline - now));
  }
}

}  // namespace

WriteTurn::~WriteTurn() {
  if (fd_ >= 0) close(fd_);  // releases whatever this description holds
}

bool WriteTurn::open() noexcept {
  if (fd_ >= 0) return true;
  if (disabled_) return false;
  // The store file's permission bits, as SQLite does for -wal and -shm.
  mode_t mode = 0644;
  struct stat store {};
  if (stat(store_path_.c_str(), &store) == 0) mode = store.st_mode & 0666;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd_ < 0) disabled_ = true;
  return fd_ >= 0;
}

void WriteTurn::disable() noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  disabled_ = true;
  held_ = false;
}

bool WriteTurn::acquire(std::chrono::milliseconds timeout) noexcept {
  if (held_ || !open()) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds(0));
  int error = lock_byte_until(fd_, queue_byte, deadline);
  if (error == 0) {
    error = lock_byte_until(fd_, turn_byte, deadline);
    held_ = error == 0;
    if (lock_byte(fd_, F_UNLCK, queue_byte) != 0) {
      disable();  // closing the description releases the turn too
      return true;
    }
  }
  if (error == 0) return true;
  if (is_held_elsewhere(error)) return false;
  disable();
  return true;
}

void WriteTurn::release() noexcept {
  if (!held_) return;
  held_ = false;
  if (lock_byte(fd_, F_UNLCK, turn_byte) != 0) disable();
}

}  // namespace evs::sqlite
