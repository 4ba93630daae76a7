"""Monitoring factor codes (HJ 212-2017 Appendix B) and the HJ/T 212-2005 code mapping.

2005 loggers send numeric-ish codes (``011`` COD, ``02`` SO2, ``B01`` wastewater flow); 2017
uses six-character codes (``w01018``, ``a21026``, ``w00000``). Water 2005 codes have three
characters and gas codes two, so the mapping is unambiguous. Codes not in the table (vendor
codes such as ``O3``, ``ele01`` or the Appendix C typo ``01018``) are passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CODE_2005_TO_2017", "FACTORS", "FactorInfo", "factor_info", "to_2017"]


@dataclass(frozen=True, slots=True)
class FactorInfo:
    """Name and default units of a 2017 factor code."""

    code: str
    name: str
    unit: str
    """Default concentration (or measurement) unit; "" for dimensionless values such as pH."""
    amount_unit: str = ""
    """Unit of the emitted amount (``-Cou``), "" when the standard gives none."""
    code_2005: str | None = None
    note: str = ""


_ROWS: tuple[FactorInfo, ...] = (
    # Water, Table B.1 (from HJ 525-2009)
    FactorInfo("w00000", "wastewater flow", "L/s", "m³", "B01"),
    FactorInfo("w01001", "pH", "", "", "001"),
    FactorInfo("w01002", "colour", "degree", "", "002"),
    FactorInfo("w01009", "dissolved oxygen", "mg/L"),
    FactorInfo("w01010", "water temperature", "°C"),
    FactorInfo("w01012", "suspended solids", "mg/L", "kg", "003"),
    FactorInfo("w01014", "conductivity", "µS/cm"),
    FactorInfo("w01017", "BOD5", "mg/L", "kg", "010"),
    FactorInfo("w01018", "COD", "mg/L", "kg", "011"),
    FactorInfo("w01019", "permanganate index", "mg/L", "kg"),
    FactorInfo("w01020", "TOC", "mg/L", "kg", "015"),
    FactorInfo("w20111", "total mercury", "µg/L", "g", "020"),
    FactorInfo("w20115", "total cadmium", "µg/L", "g", "022"),
    FactorInfo("w20116", "total chromium", "mg/L", "kg", "023"),
    FactorInfo("w20117", "hexavalent chromium", "µg/L", "g", "024"),
    FactorInfo("w20119", "total arsenic", "µg/L", "g", "026"),
    FactorInfo("w20120", "total lead", "µg/L", "g", "027"),
    FactorInfo("w20121", "total nickel", "mg/L", "kg", "028"),
    FactorInfo("w20122", "total copper", "mg/L", "kg", "029"),
    FactorInfo("w20123", "total zinc", "mg/L", "kg", "030"),
    FactorInfo("w21001", "total nitrogen", "mg/L", "kg", "065"),
    FactorInfo("w21003", "ammonia nitrogen", "mg/L", "kg", "060"),
    FactorInfo("w21011", "total phosphorus", "mg/L", "kg", "101"),
    FactorInfo("w21016", "cyanide", "mg/L", "kg", "070"),
    FactorInfo("w21017", "fluoride", "mg/L", "kg", "072"),
    FactorInfo("w21019", "sulfide", "mg/L", "kg", "071"),
    FactorInfo("w22001", "petroleum oils", "mg/L", "kg", "080"),
    FactorInfo("w23002", "volatile phenol", "mg/L", "kg", "110"),
    # Gas, Table B.2 (from HJ 524-2009)
    FactorInfo("a00000", "flue-gas flow", "m³/s", "m³", "B02"),
    FactorInfo("a01001", "ambient temperature", "°C"),
    FactorInfo("a01002", "ambient humidity", "%"),
    FactorInfo("a01006", "atmospheric pressure", "kPa"),
    FactorInfo("a01007", "wind speed", "m/s"),
    FactorInfo("a01008", "wind direction", "°"),
    FactorInfo("a01010", "Ringelmann blackness", "", "", "37"),
    FactorInfo("a01011", "flue-gas velocity", "m/s", "", "S02"),
    FactorInfo("a01012", "flue-gas temperature", "°C", "", "S03"),
    FactorInfo("a01013", "flue-gas static pressure", "kPa", "", "S08"),
    FactorInfo("a01014", "flue-gas humidity", "%", "", "S05"),
    FactorInfo("a01015", "cooler temperature", "°C", "", "S06"),
    FactorInfo("a01016", "flue cross-section area", "m²", "", "S07"),
    FactorInfo("a01017", "flue-gas dynamic pressure", "kPa", "", "S04"),
    FactorInfo("a01901", "incinerator furnace mean temperature", "°C"),
    FactorInfo("a01902", "incinerator DCS temperature", "°C"),
    FactorInfo("a05001", "carbon dioxide", "mg/m³", "kg", "30"),
    FactorInfo("a05002", "methane", "ng/m³", "g", None, "unit as printed in Appendix B"),
    FactorInfo("a19001", "oxygen content", "%", "", "S01"),
    FactorInfo("a21001", "ammonia", "ng/m³", "g", "10", "unit as printed in Appendix B"),
    FactorInfo("a21002", "nitrogen oxides", "mg/m³", "kg", "03"),
    FactorInfo("a21003", "nitric oxide", "mg/m³", "kg"),
    FactorInfo("a21004", "nitrogen dioxide", "mg/m³", "kg"),
    FactorInfo("a21005", "carbon monoxide", "mg/m³", "kg", "04"),
    FactorInfo("a21017", "cyanide", "mg/m³", "kg", "07"),
    FactorInfo("a21018", "fluoride", "mg/m³", "kg", "06"),
    FactorInfo("a21022", "chlorine", "mg/m³", "kg", "11"),
    FactorInfo("a21024", "hydrogen chloride", "mg/m³", "kg", "08"),
    FactorInfo("a21026", "sulfur dioxide", "mg/m³", "kg", "02"),
    FactorInfo("a21028", "hydrogen sulfide", "mg/m³", "kg", "05"),
    FactorInfo("a23001", "phenols", "mg/m³", "kg", "27"),
    FactorInfo("a24046", "vinyl chloride", "mg/m³", "kg", "29"),
    FactorInfo("a24087", "hydrocarbons", "mg/m³", "kg", "25"),
    FactorInfo("a24088", "non-methane hydrocarbons", "mg/m³", "kg"),
    FactorInfo("a25002", "benzene", "mg/m³", "kg"),
    FactorInfo("a25003", "toluene", "mg/m³", "kg", "17"),
    FactorInfo("a25005", "xylene", "mg/m³", "kg", "18"),
    FactorInfo("a25010", "chlorobenzene", "mg/m³", "kg", "23"),
    FactorInfo("a25023", "nitrobenzene", "mg/m³", "kg", "22"),
    FactorInfo("a25044", "benzo[a]pyrene", "mg/m³", "kg", "20"),
    FactorInfo("a26001", "anilines", "mg/m³", "kg", "21"),
    FactorInfo("a20016", "beryllium and compounds", "mg/m³", "kg", "36"),
    FactorInfo("a20025", "cadmium and compounds", "mg/m³", "kg", "33"),
    FactorInfo("a20043", "lead and compounds", "mg/m³", "kg", "32"),
    FactorInfo("a20057", "mercury and compounds", "mg/m³", "kg", "31"),
    FactorInfo("a20063", "nickel and compounds", "mg/m³", "kg", "35"),
    FactorInfo("a20091", "tin and compounds", "mg/m³", "kg", "34"),
    FactorInfo("a30001", "methanol", "mg/m³", "kg", "28"),
    FactorInfo("a30022", "mercaptans", "mg/m³", "kg", "13"),
    FactorInfo("a31001", "formaldehyde", "mg/m³", "kg", "19"),
    FactorInfo("a31002", "acetaldehyde", "mg/m³", "kg", "26"),
    FactorInfo("a34001", "TSP", "ng/m³", "g", None, "unit as printed in Appendix B"),
    FactorInfo("a34002", "PM10", "ng/m³", "g", None, "unit as printed in Appendix B"),
    FactorInfo("a34004", "PM2.5", "ng/m³", "g", None, "unit as printed in Appendix B"),
    FactorInfo("a34005", "PM1.0", "ng/m³", "g", None, "unit as printed in Appendix B"),
    FactorInfo("a34013", "particulate matter (smoke dust)", "mg/m³", "kg", "01"),
    FactorInfo("a34038", "asphalt fume", "mg/m³", "kg", "09"),
    FactorInfo("a34039", "sulfuric acid mist", "mg/m³", "kg", "14"),
    FactorInfo("a34040", "chromic acid mist", "mg/m³", "kg", "15"),
    FactorInfo("a99049", "phosgene", "mg/m³", "kg", "24"),
    FactorInfo("a99051", "carbon disulfide", "mg/m³", "kg", "12"),
    # Noise, Table B.3
    *(FactorInfo(code, f"noise {code}", "dB") for code in ("LA", "L5", "L10", "L50", "L90")),
    *(FactorInfo(code, f"noise {code}", "dB") for code in ("L95", "Leq", "Ldn", "Ld", "Ln")),
    *(FactorInfo(code, f"noise {code}", "dB") for code in ("LMx", "LMn")),
)

FACTORS: Mapping[str, FactorInfo] = MappingProxyType({row.code: row for row in _ROWS})
CODE_2005_TO_2017: Mapping[str, str] = MappingProxyType(
    {row.code_2005: row.code for row in _ROWS if row.code_2005 is not None}
)


def to_2017(code: str) -> str:
    """The 2017 code for a 2005 code; any other code unchanged."""
    return CODE_2005_TO_2017.get(code, code)


def factor_info(code: str) -> FactorInfo | None:
    """Name and units for a 2017 (or mappable 2005) code, None when unknown."""
    return FACTORS.get(to_2017(code))
