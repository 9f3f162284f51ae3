#include <cblas.h>
// OpenBLAS extensions: the engine sets OpenBLAS's thread count to match its own pool.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
