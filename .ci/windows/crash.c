/* Crashes on purpose (an access violation): .ci/run checks that .ci/wine-run reports it as a
 * failure. With Wine's debugger enabled, a crashed program exits with status 0, and a crashed
 * test binary would count as passed. */
int main(void)
{
    volatile int *nowhere = (volatile int *)2;
    return *nowhere;
}
