// Must NOT compile: a BOOST_DESCRIBE_CLASS type with a private member would lose it from its payload and
// its fingerprint, so evs refuses it.
#include <evs/core/event.hpp>

#include <cstdint>
#include <string>

class Secretive {
 public:
  std::string visible;

 private:
  std::int64_t hidden = 0;
  BOOST_DESCRIBE_CLASS(Secretive, (), (visible), (), (hidden))
};
EVS_EVENT(Secretive, "test.secretive", 1)

int main() { return evs::encode(Secretive{}, evs::Encoding::binary).empty() ? 1 : 0; }
