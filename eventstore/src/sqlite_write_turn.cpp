#include "sqlite_write_turn.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evs::sqlite {
namespace {

constexpr off_t queue_byte = 0;
constexpr off_t turn_byte = 1;

// Locks (F_WRLCK) or unlocks (F_UNLCK) one byte; `wait`: block until granted. 0 or the errno.
int lock_byte(int fd, short type, off_t byte, bool wait) noexcept {
#ifdef F_OFD_SETLKW
  struct flock request {};
  request.l_type = type;
  request.l_whence = SEEK_SET;
  request.l_start = byte;
  request.l_len = 1;
  request.l_pid = 0;  // required for OFD locks
  while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &request) != 0)
    if (errno != EINTR) return errno;
  return 0;
#else
  (void)fd, (void)type, (void)byte, (void)wait;
  return ENOSYS;
#endif
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

void WriteTurn::acquire() noexcept {
  if (held_ || !open()) return;
  if (lock_byte(fd_, F_WRLCK, queue_byte, true) != 0 || lock_byte(fd_, F_WRLCK, turn_byte, true) != 0) {
    disable();
    return;
  }
  held_ = true;
  if (lock_byte(fd_, F_UNLCK, queue_byte, false) != 0) disable();
}

void WriteTurn::release() noexcept {
  if (!held_) return;
  held_ = false;
  if (lock_byte(fd_, F_UNLCK, turn_byte, false) != 0) disable();
}

}  // namespace evs::sqlite
