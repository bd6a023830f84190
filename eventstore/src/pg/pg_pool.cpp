#include "pg_pool.hpp"

namespace evs::pg {

PgPool::PgPool(std::string conninfo, PgConnectOptions options, std::size_t size)
    : conninfo_(std::move(conninfo)), options_(std::move(options)), size_(size == 0 ? 1 : size) {}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)) {}

PgPool::Lease::~Lease() {
  if (connection_) pool_->give_back(std::move(connection_));
}

void PgPool::give_back(std::unique_ptr<PgConnection> c) {
  std::lock_guard lock(mutex_);
  if (c->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  returned_.notify_one();
}

Result<PgPool::Lease> PgPool::acquire(std::string_view action) {
  {
    std::unique_lock lock(mutex_);
    returned_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(c));
    }
    ++open_;  // reserve the slot; the connection is made outside the lock
  }
  auto c = PgConnection::connect(conninfo_, options_);
  if (!c) {
    std::lock_guard lock(mutex_);
    --open_;
    returned_.notify_one();
    Error e = c.error();
    if (!action.empty()) e.message = std::string(action) + ": " + e.message;
    return e;
  }
  return Lease(*this, std::make_unique<PgConnection>(std::move(*c)));
}

}  // namespace evs::pg
