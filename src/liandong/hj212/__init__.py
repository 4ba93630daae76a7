"""The HJ 212 codec: a library for HJ 212-2017 data-logger frames (with HJ/T 212-2005 and field
quirks), shared by the gateway, the alerts replay and the logger simulator. It knows bytes,
frames and packets; nothing in it knows Kafka or sockets.

* `framing`: cutting a byte stream into candidate frames.
* `crc`: the Appendix A check code and the CRC-16/MODBUS variants.
* `rejects`: why a frame or a run of bytes is rejected (`RejectReason`, `FrameError`).
* `packets`: the decoded packet (`Packet`, `FactorValue`, `DecodeResult`, flags, N14 times).
* `decoding` / `encoding`: frame to packet (strict or lenient) and back.
* `native`: the Rust hot path for clean frames (crate in `rust/`), with `decoding` as its
  pure-Python twin.
* `factors`: factor codes (Appendix B) and the 2005 -> 2017 code map.
* `records`: a decoded packet as the monitoring.records contract (MonitoringRecord).
"""
