// Must NOT compile: a protected described member (here inherited by a described struct) would be left out of
// the payload and the fingerprint, so evs refuses it.
#include <evs/core/fingerprint.hpp>

#include <cstdint>

class Base {
 public:
  std::int64_t a = 0;

 protected:
  std::int64_t b = 0;
  BOOST_DESCRIBE_CLASS(Base, (), (a), (b), ())
};

struct Derived : Base {
  std::int64_t c = 0;
};
BOOST_DESCRIBE_STRUCT(Derived, (Base), (c))

int main() { return evs::fingerprint_v<Derived> == 0 ? 1 : 0; }
