// libyaml's parser and emitter.
#include <yaml.h>
