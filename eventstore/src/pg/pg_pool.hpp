// A bounded pool of PgConnections for one store (internal: the PostgreSQL backend).
//
// acquire() hands out an idle connection, opens a new one while fewer than `size` exist, and otherwise waits
// for one to come back. A connection found broken when it comes back is dropped; the next acquire opens a
// fresh one. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "evs/core/error.hpp"
#include "pg_connection.hpp"

namespace evs::pg {

class PgPool {
 public:
  PgPool(std::string conninfo, PgConnectOptions options, std::size_t size);

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection& operator*() const { return *connection_; }
    PgConnection* operator->() const { return connection_.get(); }

   private:
    friend class PgPool;
    Lease(PgPool& pool, std::unique_ptr<PgConnection> c) : pool_(&pool), connection_(std::move(c)) {}
    PgPool* pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  // A connection, or unavailable when none could be opened.
  Result<Lease> acquire(std::string_view action);

  // Runs `work` on a pooled connection. When it fails with unavailable (the server restarted, the
  // connection was cut), runs it once more on a fresh connection, so a read after a server restart
  // succeeds as soon as the server is back.
  template <class T>
  Result<T> run(std::string_view action, const std::function<Result<T>(PgConnection&)>& work) {
    for (int attempt = 0;; ++attempt) {
      auto lease = acquire(action);
      if (!lease) return lease.error();
      Result<T> r = work(**lease);
      if (r || attempt == 1 || !r.error().is(errc::unavailable)) return r;
    }
  }

  const std::string& conninfo() const { return conninfo_; }
  const PgConnectOptions& connect_options() const { return options_; }

 private:
  void give_back(std::unique_ptr<PgConnection> c);

  std::string conninfo_;
  PgConnectOptions options_;
  std::size_t size_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::size_t open_ = 0;  // connections that exist: idle or leased
};

}  // namespace evs::pg
