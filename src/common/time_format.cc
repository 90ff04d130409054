// RFC 3339 formatting and parsing (time_format.h).
#include "common/time_format.h"

#include <algorithm>
#include <ctime>

namespace hami::common {
namespace {

// Parses exactly `n` digits at s[pos]; -1 when any is not a digit.
int Digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian), H. Hinnant's algorithm.
long long DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

Status Bad(std::string_view text, const char* why) {
  return InvalidArgument("RFC 3339 time \"" + std::string(text.substr(0, 64)) + "\": " + why);
}

}  // namespace

std::string FormatRfc3339(SystemTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NowRfc3339() { return FormatRfc3339(std::chrono::system_clock::now()); }

StatusOr<SystemTime> ParseRfc3339(std::string_view s) {
  const int year = Digits(s, 0, 4), month = Digits(s, 5, 2), day = Digits(s, 8, 2);
  const int hour = Digits(s, 11, 2), minute = Digits(s, 14, 2), second = Digits(s, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || s[4] != '-' ||
      s[7] != '-' || s[13] != ':' || s[16] != ':') {
    return Bad(s, "expected YYYY-MM-DDTHH:MM:SS");
  }
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return Bad(s, "expected 'T' after the date");
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) {
    return Bad(s, "no such date");
  }
  if (hour > 23 || minute > 59 || second > 60) return Bad(s, "no such time of day");
  std::size_t pos = 19;
  long long nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) nanos = nanos * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return Bad(s, "empty fraction of a second");
    for (int i = n; i < 9; ++i) nanos *= 10;
  }
  if (pos >= s.size()) return Bad(s, "missing time zone (Z or +HH:MM)");
  long long offset = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    const int oh = Digits(s, pos + 1, 2), om = Digits(s, pos + 4, 2);
    if (oh < 0 || om < 0 || s[pos + 3] != ':' || oh > 23 || om > 59) {
      return Bad(s, "bad time zone offset");
    }
    offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600LL + om * 60LL);
    pos += 6;
  } else {
    return Bad(s, "missing time zone (Z or +HH:MM)");
  }
  if (pos != s.size()) return Bad(s, "trailing characters");
  const long long secs = DaysFromCivil(year, month, day) * 86400LL + hour * 3600LL +
                         minute * 60LL + std::min(second, 59) - offset;
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(
      std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos)));
}

}  // namespace hami::common
