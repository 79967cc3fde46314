// zlib (deflate, crc32), for PNG encoding.
#include <zlib.h>
