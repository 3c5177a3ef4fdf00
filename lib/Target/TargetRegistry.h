//===- TargetRegistry.h - How a target file registers itself ----*- C++ -*-===//
//
// Internal to lib/Target. A target is one file under Targets/ holding
//
//   LOWBIT_TARGET(X86_64_V3) {
//     static const TargetInfo target{...};
//     return target;
//   }
//
// CMake lists the files of Targets/ and generates Targets.inc with one
// LOWBIT_REGISTER_TARGET(FileStem) per file, so adding a file is all it takes
// (no static initialisers, which a static library would drop).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_TARGET_TARGETREGISTRY_H
#define LOWBIT_LIB_TARGET_TARGETREGISTRY_H

#include "lowbit/Target/TargetTable.h"

#define LOWBIT_TARGET(Name)                                                    \
  const ::lowbit::target::TargetInfo &lowbitTarget_##Name()

#endif // LOWBIT_LIB_TARGET_TARGETREGISTRY_H
