// The results database's schema as an ordered list of migrations. PRAGMA
// user_version holds how many have been applied; opening a database applies
// the missing ones, each in its own transaction, and refuses a database
// written by a newer build.
#pragma once

#include "harness/store/sqlite_db.h"

namespace residency::store {

int SchemaVersion();  // the number of migrations this build knows
Status Migrate(Database& db);

}  // namespace residency::store
