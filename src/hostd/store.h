// Durable state of the single-host daemon: granted slices and the wait queue, in SQLite (WAL)
// under the state directory, so `hami serve` restarts with every slice intact.
// Not thread-safe: the daemon calls it under its own lock.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "hostd/types.h"

struct sqlite3;

namespace hami::hostd {

class Store {
 public:
  // Opens or creates the database file. Errors: kUnavailable when it cannot be opened,
  // kInternal when its schema cannot be created.
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Gives the slice a new id (ids are never reused), lets `fill` complete it (paths derive
  // from the id), stores it and, when `ticket` > 0, removes that queue entry in the same
  // transaction. Errors: kInternal on a database failure (nothing is stored then).
  Status InsertSlice(Slice* slice, const std::function<void(Slice*)>& fill, int64_t ticket = 0);
  // Stores a slice under its own id (an adopted orphan). kAlreadyExists, kInternal.
  Status InsertSliceWithId(const Slice& slice);
  // Makes every id handed out later greater than `id`. kInternal.
  Status ReserveIdsUpTo(int64_t id);
  Status UpdateSlice(const Slice& slice);  // kNotFound for an unknown id
  Status DeleteSlice(int64_t id);          // kNotFound for an unknown id
  StatusOr<std::vector<Slice>> LoadSlices();

  // Gives the entry a new ticket (FIFO order = ticket order).
  Status InsertQueued(QueueEntry* entry);
  Status DeleteQueued(int64_t ticket);  // kNotFound for an unknown ticket
  StatusOr<std::vector<QueueEntry>> LoadQueue();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status ExecBound(const char* sql, const std::vector<std::string>& text_args,
                   const std::vector<int64_t>& int_args, int* changes = nullptr);
  sqlite3* db_;
};

}  // namespace hami::hostd
