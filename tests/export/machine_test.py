"""Tests for export.runtime.machine: the CPU's int8-relevant features read from /proc/cpuinfo, x86 and ARM."""

import os

from absl.testing import absltest

from export.runtime import machine

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse sse2 avx avx2 fma f16c avx512f avx512bw avx512_vnni
"""
X86_AVX2_ONLY = X86.replace(" avx512f avx512bw avx512_vnni", "")
ARM = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd42
"""


class MachineTest(absltest.TestCase):

    def _info(self, text: str) -> dict:
        path = os.path.join(self.create_tempdir().full_path, "cpuinfo")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return machine.cpu_info(path)

    def test_x86_features_and_model(self):
        info = self._info(X86)
        self.assertEqual(info["model"], "AMD EPYC 9R14")
        self.assertTrue(info["features"]["avx512_vnni"])
        self.assertTrue(info["features"]["avx2"])
        self.assertFalse(info["features"]["amx_int8"])
        line = machine.describe_cpu(info)
        self.assertIn("has AVX2", line)
        self.assertIn("AVX-512 VNNI (int8 dot products)", line.split("lacks")[0])

    def test_another_flag_set_is_another_machine(self):
        self.assertNotEqual(
            self._info(X86)["flags_digest"], self._info(X86_AVX2_ONLY)["flags_digest"]
        )
        self.assertFalse(self._info(X86_AVX2_ONLY)["features"]["avx512_vnni"])

    def test_arm_reads_neon_and_its_dot_product(self):
        info = self._info(ARM)
        self.assertIn("asimddp", info["features"])
        self.assertTrue(info["features"]["asimd"])
        self.assertTrue(info["features"]["asimddp"])
        self.assertFalse(info["features"]["i8mm"])
        self.assertIn("NEON dot product (int8)", machine.describe_cpu(info).split("lacks")[0])

    def test_no_cpuinfo_says_the_features_are_unknown(self):
        info = machine.cpu_info("/nonexistent/cpuinfo")
        self.assertEqual(info["features"], {})
        self.assertIn("features unknown", machine.describe_cpu(info))

    def test_peak_memory_is_positive(self):
        self.assertGreater(machine.peak_memory_mib(), 1.0)


if __name__ == "__main__":
    absltest.main()
