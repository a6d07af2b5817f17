/*
 * bcryptprimitives.dll for Wine 8.0, which lacks it: Rust's standard library (1.78 and later)
 * imports ProcessPrng from it to seed HashMap keys, and a Windows program built with it does not
 * start without it (exit status 53). This stub exports ProcessPrng and forwards to
 * SystemFunction036 (RtlGenRandom), which Wine has. Built and copied into the Wine prefix by
 * .ci/wine-run; never used on a real Windows, which has the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
