#include "hostd/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

namespace hami::hostd {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS slices (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue (ticket INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
)sql";

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
                          SQLITE_OPEN_NOFOLLOW,
                      nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Unavailable("cannot open state database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  // The journal files take the database's mode: only the daemon's user reads who holds what.
  chmod(path.c_str(), 0600);
  std::unique_ptr<Store> store(new Store(db));
  HAMI_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  // FULL: a committed slice survives a power cut, not only a crash; writes are rare.
  HAMI_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  HAMI_RETURN_IF_ERROR(store->Exec(kSchema));
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Internal(std::string("state database: ") + msg);
  }
  return Status::Ok();
}

// Binds text args first (?1..), then int args.
Status Store::ExecBound(const char* sql, const std::vector<std::string>& text_args,
                        const std::vector<int64_t>& int_args, int* changes) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr) != SQLITE_OK) {
    return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  }
  int i = 1;
  for (const auto& t : text_args) {
    sqlite3_bind_text(st.s, i++, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
  }
  for (int64_t v : int_args) sqlite3_bind_int64(st.s, i++, v);
  if (sqlite3_step(st.s) != SQLITE_DONE) {
    return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  }
  if (changes) *changes = sqlite3_changes(db_);
  return Status::Ok();
}

Status Store::InsertSlice(Slice* slice, const std::function<void(Slice*)>& fill, int64_t ticket) {
  HAMI_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  Status s = ExecBound("INSERT INTO slices(body) VALUES('{}')", {}, {});
  if (!s.ok()) return fail(s);
  slice->id = sqlite3_last_insert_rowid(db_);
  fill(slice);
  s = ExecBound("UPDATE slices SET body=?1 WHERE id=?2", {ToJson(*slice).dump()}, {slice->id});
  if (!s.ok()) return fail(s);
  if (ticket > 0) {
    s = ExecBound("DELETE FROM queue WHERE ticket=?1", {}, {ticket});
    if (!s.ok()) return fail(s);
  }
  s = Exec("COMMIT");
  if (!s.ok()) return fail(s);
  return Status::Ok();
}

Status Store::InsertSliceWithId(const Slice& slice) {
  int changes = 0;
  HAMI_RETURN_IF_ERROR(ExecBound("INSERT OR IGNORE INTO slices(id, body) VALUES(?2, ?1)",
                                 {ToJson(slice).dump()}, {slice.id}, &changes));
  if (changes == 0) {
    return Status(StatusCode::kAlreadyExists, "slice " + slice.Name() + " is already stored");
  }
  return Status::Ok();
}

Status Store::ReserveIdsUpTo(int64_t id) {
  if (id <= 0) return Status::Ok();
  // AUTOINCREMENT never goes below the largest id it has seen: show it one, then drop it.
  HAMI_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = ExecBound("INSERT OR IGNORE INTO slices(id, body) VALUES(?1, '{}')", {}, {id});
  if (s.ok()) s = ExecBound("DELETE FROM slices WHERE id=?1 AND body='{}'", {}, {id});
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

Status Store::UpdateSlice(const Slice& slice) {
  int changes = 0;
  HAMI_RETURN_IF_ERROR(ExecBound("UPDATE slices SET body=?1 WHERE id=?2", {ToJson(slice).dump()},
                                 {slice.id}, &changes));
  if (changes == 0) return NotFound("no slice s" + std::to_string(slice.id));
  return Status::Ok();
}

Status Store::DeleteSlice(int64_t id) {
  int changes = 0;
  HAMI_RETURN_IF_ERROR(ExecBound("DELETE FROM slices WHERE id=?1", {}, {id}, &changes));
  if (changes == 0) return NotFound("no slice s" + std::to_string(id));
  return Status::Ok();
}

StatusOr<std::vector<Slice>> Store::LoadSlices() {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT id, body FROM slices ORDER BY id", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  }
  std::vector<Slice> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st.s, 0);
    const char* body = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    auto j = nlohmann::json::parse(body ? body : "", nullptr, /*allow_exceptions=*/false);
    auto s = SliceFromJson(j);
    if (j.is_discarded() || !s.ok()) {
      return Internal("state database: slice row " + std::to_string(id) + " is corrupt" +
                      (s.ok() ? std::string() : ": " + s.status().message()));
    }
    s->id = id;
    out.push_back(std::move(*s));
  }
  if (rc != SQLITE_DONE) return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  return out;
}

Status Store::InsertQueued(QueueEntry* entry) {
  HAMI_RETURN_IF_ERROR(ExecBound(
      "INSERT INTO queue(body) VALUES(?1)",
      {nlohmann::json{{"request", ToJson(entry->request)}, {"created_unix", entry->created_unix}}
           .dump()},
      {}));
  entry->ticket = sqlite3_last_insert_rowid(db_);
  return Status::Ok();
}

Status Store::DeleteQueued(int64_t ticket) {
  int changes = 0;
  HAMI_RETURN_IF_ERROR(ExecBound("DELETE FROM queue WHERE ticket=?1", {}, {ticket}, &changes));
  if (changes == 0) return NotFound("no queue ticket " + std::to_string(ticket));
  return Status::Ok();
}

StatusOr<std::vector<QueueEntry>> Store::LoadQueue() {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT ticket, body FROM queue ORDER BY ticket", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  }
  std::vector<QueueEntry> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    QueueEntry q;
    q.ticket = sqlite3_column_int64(st.s, 0);
    const char* body = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    auto j = nlohmann::json::parse(body ? body : "", nullptr, false);
    bool shape_ok = j.is_object() && j.contains("request") && j.contains("created_unix") &&
                    j["created_unix"].is_number_integer();
    auto r = SliceRequestFromJson(shape_ok ? j["request"] : nlohmann::json());
    if (!shape_ok || !r.ok()) {
      return Internal("state database: queue row " + std::to_string(q.ticket) + " is corrupt");
    }
    q.request = std::move(*r);
    q.created_unix = j["created_unix"].get<int64_t>();
    out.push_back(std::move(q));
  }
  if (rc != SQLITE_DONE) return Internal(std::string("state database: ") + sqlite3_errmsg(db_));
  return out;
}

}  // namespace hami::hostd
