/**
 * Formulas pinned to independent, published reference vectors (DESIGN §10;
 * docs/features.md "Reference vectors"). Each block names its source; the
 * inputs and expected values are copied, not computed here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FEATURE_PARAMS, initialFeatureState, nextFeature, type Feature, type FeatureState } from '../../../streams/features/features.ts';
import {
  alphaFrom, ewmaAlphaStep, ewmaHalfLifeStep, initialEwmaAlphaState, initialEwmaHalfLifeState,
  type EwmaAlphaState, type EwmaHalfLifeState, type Observation,
} from '../../../streams/features/ewma.ts';
import { ConfigError, InputError } from '../../../streams/runtime/errors.ts';
import type { Candle } from '../../../streams/model/records.ts';
import { rng } from '../../support/random.ts';

const near = (actual: number | null, expected: number, tol: number, what: string) =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected} (±${tol})`);

// ---------------------------------------------------------------------------
// ATR: TA-Lib's regression test and its reference daily data set
// ---------------------------------------------------------------------------

// TA-Lib reference daily bars, 252 of them: TA_SREF_{open,high,low,close}_daily_ref_0_PRIV
// in TA-Lib/ta-lib src/tools/ta_regtest/test_data.c (commit 1bad91373c8971686621cd950420ac65bb375d3e,
// lines 4–110), the history that ta_regtest.c hands to test_func_trange(). Copied value for
// value; trailing zeros dropped (93.250000 → 93.25 is the same double). Volume is not needed.
const OPEN = [
  92.5, 91.5, 95.155, 93.97, 95.5, 94.5, 95, 91.5, 91.815, 91.125, 93.875, 97.5,
  98.815, 92, 91.125, 91.875, 93.405, 89.75, 89.345, 92.25, 89.78, 87.94, 87.595, 85.22,
  83.5, 83.5, 81.25, 85.125, 88.125, 87.5, 85.25, 86, 87.19, 86.125, 89, 88.625,
  86, 85.5, 84.75, 85.25, 84.25, 86.75, 86.94, 89.315, 89.94, 90.815, 91.19, 91.345,
  89.595, 91, 89.75, 88.75, 88.315, 84.345, 83.5, 84, 86, 85.53, 87.5, 88.5,
  90, 88.655, 89.5, 91.565, 92, 93, 92.815, 91.75, 92, 91.375, 89.75, 88.75,
  85.44, 83.5, 84.875, 98.625, 96.69, 102.375, 106, 104.625, 102.5, 104.25, 104, 106.125,
  106.065, 105.94, 105.625, 108.625, 110.25, 110.565, 117, 120.75, 118, 119.125, 119.125, 117.815,
  116.375, 115.155, 111.25, 111.5, 116.69, 116, 113.62, 111.75, 114.56, 113.62, 118.12, 119.87,
  116.62, 115.87, 115.06, 115.87, 117.5, 119.87, 119.25, 120.19, 122.87, 123.87, 122.25, 123.12,
  123.31, 124, 123, 124.81, 130, 130.88, 132.5, 131, 132.5, 134, 137.44, 135.75,
  138.31, 138, 136.38, 136.5, 132, 127.5, 127.62, 124, 123.62, 125, 126.37, 126.25,
  125.94, 124, 122.75, 120, 120, 122, 123.62, 121.5, 120.12, 123.75, 122.75, 125,
  128.5, 128.38, 123.87, 124.37, 122.75, 123.37, 122, 122.62, 125, 124.25, 124.37, 125.62,
  126.5, 128.38, 128.88, 131.5, 132.5, 137.5, 134.63, 132, 134, 132, 131.38, 126.5,
  128.75, 127.19, 127.5, 120.5, 126.62, 123, 122.06, 121, 121, 118, 122, 122.25,
  119.12, 115, 113.5, 114, 110.81, 106.5, 106.44, 108, 107, 108.62, 93, 93.75,
  94.25, 94.87, 95.5, 94.5, 97, 98.5, 96.75, 95.87, 94.44, 92.75, 90.5, 95.06,
  94.62, 97.5, 96, 96, 94.62, 94.87, 94, 99, 105.5, 108.81, 105, 105.94,
  104.94, 103.69, 102.56, 103.44, 109.81, 113, 117, 116.25, 120.5, 111.62, 108.12, 110.19,
  107.75, 108, 110.69, 109.06, 108.5, 109.87, 109.12, 109.69, 109.56, 110.44, 109.69, 109.19,
];
const HIGH = [
  93.25, 94.94, 96.375, 96.19, 96, 94.72, 95, 93.72, 92.47, 92.75, 96.25, 99.625,
  99.125, 92.75, 91.315, 93.25, 93.405, 90.655, 91.97, 92.25, 90.345, 88.5, 88.25, 85.5,
  84.44, 84.75, 84.44, 89.405, 88.125, 89.125, 87.155, 87.25, 87.375, 88.97, 90, 89.845,
  86.97, 85.94, 84.75, 85.47, 84.47, 88.5, 89.47, 90, 92.44, 91.44, 92.97, 91.72,
  91.155, 91.75, 90, 88.875, 89, 85.25, 83.815, 85.25, 86.625, 87.94, 89.375, 90.625,
  90.75, 88.845, 91.97, 93.375, 93.815, 94.03, 94.03, 91.815, 92, 91.94, 89.75, 88.75,
  86.155, 84.875, 85.94, 99.375, 103.28, 105.375, 107.625, 105.25, 104.5, 105.5, 106.125, 107.94,
  106.25, 107, 108.75, 110.94, 110.94, 114.22, 123, 121.75, 119.815, 120.315, 119.375, 118.19,
  116.69, 115.345, 113, 118.315, 116.87, 116.75, 113.87, 114.62, 115.31, 116, 121.69, 119.87,
  120.87, 116.75, 116.5, 116, 118.31, 121.5, 122, 121.44, 125.75, 127.75, 124.19, 124.44,
  125.75, 124.69, 125.31, 132, 131.31, 132.25, 133.88, 133.5, 135.5, 137.44, 138.69, 139.19,
  138.5, 138.13, 137.5, 138.88, 132.13, 129.75, 128.5, 125.44, 125.12, 126.5, 128.69, 126.62,
  126.69, 126, 123.12, 121.87, 124, 127, 124.44, 122.5, 123.75, 123.81, 124.5, 127.87,
  128.56, 129.63, 124.87, 124.37, 124.87, 123.62, 124.06, 125.87, 125.19, 125.62, 126, 128.5,
  126.75, 129.75, 132.69, 133.94, 136.5, 137.69, 135.56, 133.56, 135, 132.38, 131.44, 130.88,
  129.63, 127.25, 127.81, 125, 126.81, 124.75, 122.81, 122.25, 121.06, 120, 123.25, 122.75,
  119.19, 115.06, 116.69, 114.87, 110.87, 107.25, 108.87, 109, 108.5, 113.06, 93, 94.62,
  95.12, 96, 95.56, 95.31, 99, 98.81, 96.81, 95.94, 94.44, 92.94, 93.94, 95.5,
  97.06, 97.5, 96.25, 96.37, 95, 94.87, 98.25, 105.12, 108.44, 109.87, 105, 106,
  104.94, 104.5, 104.44, 106.31, 112.87, 116.5, 119.19, 121, 122.12, 111.94, 112.75, 110.19,
  107.94, 109.69, 111.06, 110.44, 110.12, 110.31, 110.44, 110, 110.75, 110.5, 110.5, 109.5,
];
const LOW = [
  90.75, 91.405, 94.25, 93.5, 92.815, 93.5, 92, 89.75, 89.44, 90.625, 92.75, 96.315,
  96.03, 88.815, 86.75, 90.94, 88.905, 88.78, 89.25, 89.75, 87.5, 86.53, 84.625, 82.28,
  81.565, 80.875, 81.25, 84.065, 85.595, 85.97, 84.405, 85.095, 85.5, 85.53, 87.875, 86.565,
  84.655, 83.25, 82.565, 83.44, 82.53, 85.065, 86.875, 88.53, 89.28, 90.125, 90.75, 89,
  88.565, 90.095, 89, 86.47, 84, 83.315, 82, 83.25, 84.75, 85.28, 87.19, 88.44,
  88.25, 87.345, 89.28, 91.095, 89.53, 91.155, 92, 90.53, 89.97, 88.815, 86.75, 85.065,
  82.03, 81.5, 82.565, 96.345, 96.47, 101.155, 104.25, 101.75, 101.72, 101.72, 103.155, 105.69,
  103.655, 104, 105.53, 108.53, 108.75, 107.75, 117, 118, 116, 118.5, 116.53, 116.25,
  114.595, 110.875, 110.5, 110.72, 112.62, 114.19, 111.19, 109.44, 111.56, 112.44, 117.5, 116.06,
  116.56, 113.31, 112.56, 114, 114.75, 118.87, 119, 119.75, 122.62, 123, 121.75, 121.56,
  123.12, 122.19, 122.75, 124.37, 128, 129.5, 130.81, 130.63, 132.13, 133.88, 135.38, 135.75,
  136.19, 134.5, 135.38, 133.69, 126.06, 126.87, 123.5, 122.62, 122.75, 123.56, 125.81, 124.62,
  124.37, 121.81, 118.19, 118.06, 117.56, 121, 121.12, 118.94, 119.81, 121, 122, 124.5,
  126.56, 123.5, 121.25, 121.06, 122.31, 121, 120.87, 122.06, 122.75, 122.69, 122.87, 125.5,
  124.25, 128, 128.38, 130.69, 131.63, 134.38, 132, 131.94, 131.94, 129.56, 123.75, 126,
  126.25, 124.37, 121.44, 120.44, 121.37, 121.69, 120, 119.62, 115.5, 116.75, 119.06, 119.06,
  115.06, 111.06, 113.12, 110, 105, 104.69, 103.87, 104.69, 105.44, 107, 89, 92.5,
  92.12, 94.62, 92.81, 94.25, 96.25, 96.37, 93.69, 93.5, 90, 90.19, 90.5, 92.12,
  94.12, 94.87, 93, 93.87, 93, 92.62, 93.56, 98.37, 104.44, 106, 101.81, 104.12,
  103.37, 102.12, 102.25, 103.37, 107.94, 112.5, 115.44, 115.5, 112.25, 107.56, 106.56, 106.87,
  104.5, 105.75, 108.62, 107.75, 108.06, 108, 108.19, 108.12, 109.06, 108.75, 108.56, 106.62,
];
const CLOSE = [
  91.5, 94.815, 94.375, 95.095, 93.78, 94.625, 92.53, 92.75, 90.315, 92.47, 96.125, 97.25,
  98.5, 89.875, 91, 92.815, 89.155, 89.345, 91.625, 89.875, 88.375, 87.625, 84.78, 83,
  83.5, 81.375, 84.44, 89.25, 86.375, 86.25, 85.25, 87.125, 85.815, 88.97, 88.47, 86.875,
  86.815, 84.875, 84.19, 83.875, 83.375, 85.5, 89.19, 89.44, 91.095, 90.75, 91.44, 89,
  91, 90.5, 89.03, 88.815, 84.28, 83.5, 82.69, 84.75, 85.655, 86.19, 88.94, 89.28,
  88.625, 88.5, 91.97, 91.5, 93.25, 93.5, 93.155, 91.72, 90, 89.69, 88.875, 85.19,
  83.375, 84.875, 85.94, 97.25, 99.875, 104.94, 106, 102.5, 102.405, 104.595, 106.125, 106,
  106.065, 104.625, 108.625, 109.315, 110.5, 112.75, 123, 119.625, 118.75, 119.25, 117.94, 116.44,
  115.19, 111.875, 110.595, 118.125, 116, 116, 112, 113.75, 112.94, 116, 120.5, 116.62,
  117, 115.25, 114.31, 115.5, 115.87, 120.69, 120.19, 120.75, 124.75, 123.37, 122.94, 122.56,
  123.12, 122.56, 124.62, 129.25, 131, 132.25, 131, 132.81, 134, 137.38, 137.81, 137.88,
  137.25, 136.31, 136.25, 134.63, 128.25, 129, 123.87, 124.81, 123, 126.25, 128.38, 125.37,
  125.69, 122.25, 119.37, 118.5, 123.19, 123.5, 122.19, 119.31, 123.31, 121.12, 123.37, 127.37,
  128.5, 123.87, 122.94, 121.75, 124.44, 122, 122.37, 122.94, 124, 123.19, 124.56, 127.25,
  125.87, 128.86, 132, 130.75, 134.75, 135, 132.38, 133.31, 131.94, 130, 125.37, 130.13,
  127.12, 125.19, 122, 125, 123, 123.5, 120.06, 121, 117.75, 119.87, 122, 119.19,
  116.37, 113.5, 114.25, 110, 105.06, 107, 107.87, 107, 107.12, 107, 91, 93.94,
  93.87, 95.5, 93, 94.94, 98.25, 96.75, 94.81, 94.37, 91.56, 90.25, 93.94, 93.62,
  97, 95, 95.87, 94.06, 94.62, 93.75, 98, 103.94, 107.87, 106.06, 104.5, 105,
  104.19, 103.06, 103.42, 105.27, 111.87, 116, 116.62, 118.28, 113.37, 109, 109.7, 109.25,
  107, 109.19, 110, 109.2, 110.12, 108, 108.62, 109.75, 109.81, 109, 108.75, 107.87,
];
const ATR14 = [
  3.578214285714290, 3.487627551020410, 3.559939868804670, 3.439587021032900, 3.388187948101980, 3.324745951808980,
  3.290478383822630, 3.196158499263870, 3.226790035030730, 3.226305032528540, 3.201211815919360, 3.249339543353690,
  3.245101004542710, 3.394736647075380, 3.413326886569990, 3.394874966100710, 3.348812468522080, 3.263540149341940,
  3.164358710103230, 3.184047373667280, 3.108401132691050, 3.120658194641690, 3.063111180738710, 3.098960382114510,
  3.042606069106340, 2.970277064170170, 2.896685845300870, 3.055851142065090, 3.121147489060440, 3.003208382698980,
  3.014407783934770, 2.893021513653720, 2.844948548392740, 2.836023652078970, 2.818450534073330, 2.735346924496660,
  2.647107858461190, 2.640885868571100, 2.809394020816020, 2.746937305043450, 2.680370354683200, 2.671772472205830,
  2.614860152762560, 2.618084427565230, 2.658578397024860, 2.624751368665940, 2.615840556618370, 2.536137659717060,
  2.602842112594410, 2.579781961694810, 2.701583250145180, 2.713970160849100, 2.665115149359880, 2.662249781548460,
  2.617089082866420, 2.653368434090250, 2.678127831655230, 2.758975843679860, 2.856548997702730, 2.893581212152530,
  2.927968268427350, 3.678470534968250, 3.902151211041950, 4.016283267396100, 3.970477319724950, 3.990443225458880,
  3.903982995068960, 3.895127066849750, 3.829046562074770, 3.716257521926570, 3.636167698931810, 3.590727149008110,
  3.628889495507530, 3.541825960114140, 3.445266962963130, 3.661319322751480, 4.131939371126370, 4.193943701760200,
  4.166876294491610, 3.998885130599360, 3.916464764127970, 3.775288709547400, 3.655268087436870, 3.713463224048530,
  3.626787279473630, 3.919159616654090, 4.032433929750220, 3.927260077625210, 3.990312929223410, 4.075290577136020,
  4.052055535912020, 4.016908711918300, 4.136415232495570, 4.158099858745880, 4.168949868835460, 4.134739163918640,
  4.120829223638740, 3.969341421950260, 3.940102748953810, 4.060809695457110, 3.985037574353030, 3.821106319042100,
  3.905313010539090, 3.965647795500590, 3.856672952964830, 3.786910599181630, 3.744274127811510, 3.655397404396400,
  3.590726161225230, 3.879245721137710, 3.838585312485020, 3.760829218736090, 3.711484274540660, 3.651378254930610,
  3.631279808149850, 3.626188393282010, 3.603603508047580, 3.591917543187040, 3.500352004387960, 3.509612575503110,
  3.410354534395740, 3.537472067653190, 3.896938348535100, 3.824299895068310, 3.943992759706290, 3.863707562584410,
  3.757014165256950, 3.738656010595740, 3.677323438410330, 3.683228907095310, 3.585855413731360, 3.629008598464830,
  3.721936555717340, 3.728226801737530, 3.921924887327710, 4.070358823947160, 4.016761765093790, 3.984135924729950,
  4.016697644392090, 3.930504955506940, 3.891183172970730, 3.934670089187110, 3.796479368530890, 3.963159413635820,
  3.938648026947550, 3.893744596451300, 3.838477125276200, 3.810014473470760, 3.765727725365710, 3.768890030696730,
  3.673969314218390, 3.620828648917080, 3.585769459708710, 3.611071641158090, 3.567423666789660, 3.589750547733250,
  3.641196937180880, 3.613254298810810, 3.765878991752900, 3.733316206627690, 3.720936477582860, 3.570869586326940,
  3.534378901589300, 3.483351837190060, 3.783826705962200, 3.907124798393470, 3.905187312793940, 3.831959647594370,
  4.013248244194770, 4.052301941038000, 4.151423230963860, 4.073464428752160, 4.032502683841290, 3.932323920709770,
  4.048586497801930, 3.991544605101790, 4.005719990451660, 3.983168562562260, 3.993656522379240, 4.087681056495010,
  4.050703838173930, 4.109224992590080, 4.234994635976500, 4.115352161978180, 4.178541293265460, 4.187931200889350,
  4.107364686540110, 4.246838637501530, 5.229207306251420, 5.114263927233460, 4.963245075288220, 4.760870427053340,
  4.617236825120960, 4.452434194755180, 4.424403180844090, 4.282660096498090, 4.199612946748220, 4.073926307694780,
  4.100074428573720, 4.003640540818460, 3.981237645045710, 3.938292098971020, 3.902699806187370, 3.811792677173990,
  3.771664628804420, 3.680831441032670, 3.560772052387480, 3.467145477216950, 3.554492228844310, 3.809171355355430,
  3.858516258544330, 3.859336525791160, 3.887241059663220, 3.743866698258710, 3.592876219811650, 3.506242204110820,
  3.412224903817190, 3.378494553544530, 3.680030656862780, 3.747885609944010, 3.748036637805150, 3.873176877961930,
  4.301521386678930, 4.409269859059010, 4.536464869126220, 4.449574521331490, 4.471033484093530, 4.433102520943990,
  4.290738055162280, 4.176399622650690, 4.025228221032780, 3.902711919530440, 3.798232496706840, 3.661215889799210,
  3.520414754813550, 3.393956558041150, 3.290102518181070, 3.260809481168140,
];

// ATR(14) of those bars at 15 significant digits, bars 14–251 (bars 0–13 have none):
// ishiyan/zpano go/indicators/welleswilder/averagetruerange/averagetruerange_test.go,
// testExpectedATR() (commit 9de2bf0edddcb55f5db547ae778b1f7d6117ae31; the same list is in
// zig/src/indicators/welles_wilder/average_true_range/testdata.zig @ 657fb6dacc40cb73eef979afbf7695338bf53fdf).
// Its C# original (Mbst AverageTrueRangeTest.cs) says it was taken from TA-Lib's test_trange.xls.

function talibBars(): Candle[] {
  return CLOSE.map((close, i) => ({
    instrument: 'TALIB_REF', granularity: 'D', ts: Date.UTC(2000, 0, 1) + i * 86_400_000,
    open: OPEN[i]!, high: HIGH[i]!, low: LOW[i]!, close, volume: 0, complete: true,
  }));
}

function features(candles: Candle[], atrPeriod: number): Feature[] {
  let state: FeatureState = initialFeatureState();
  return candles.map((c) => {
    const r = nextFeature(state, c, { ...DEFAULT_FEATURE_PARAMS, atrPeriod });
    state = r.state;
    return r.feature;
  });
}

// TA-Lib/ta-lib src/tools/ta_regtest/ta_test_func/test_trange.c (commit
// e17c2a3f9b7eb7853befd3d3072249803cdc6a8e), tableTest[] (lines 106–131). A row gives one
// expected value at an *output* index; output 0 is bar `expectedBegIdx`. checkExpectedValue()
// in ta_regtest/test_util.c accepts |value − expected| < 0.01 (TA_REAL_EQ(…, 0.01)), and several
// expected values are printed to that precision only (3.55 for 3.5599…, 3.394 for 3.3947…).
const TALIB_TRANGE = [[0, 3.535], [12, 9.685], [40, 5.125], [250, 2.88]] as const; // begIdx 1
const TALIB_ATR14 = [[0, 3.578], [1, 3.4876], [2, 3.55], [12, 3.245], [13, 3.394], [14, 3.413], [237, 3.26]] as const; // begIdx 14
const TALIB_TOLERANCE = 0.01;

test('ATR: the TA-Lib reference data set is the one test_data.c holds (252 bars, H ≥ C ≥ L)', () => {
  for (const a of [OPEN, HIGH, LOW, CLOSE]) assert.equal(a.length, 252);
  assert.equal(ATR14.length, 252 - 14);
  for (let i = 0; i < 252; i++) assert.ok(LOW[i]! <= CLOSE[i]! && CLOSE[i]! <= HIGH[i]!, `bar ${i}`);
});

test('true range matches TA-Lib TRANGE (test_trange.c) on its reference bars', () => {
  const f = features(talibBars(), 14);
  assert.equal(f[0]!.true_range, null); // TRANGE's begIdx is 1: no true range on the first bar
  for (const [out, expected] of TALIB_TRANGE) near(f[1 + out]!.true_range, expected, 1e-9, `TRANGE out[${out}]`);
});

test('ATR with n = 1 matches TA-Lib ATR(1) (test_trange.c): it is the true range from bar 1', () => {
  const f = features(talibBars(), 1);
  assert.equal(f[0]!.atr14, null);
  for (const [out, expected] of TALIB_TRANGE) near(f[1 + out]!.atr14, expected, 1e-9, `ATR(1) out[${out}]`);
});

test('ATR(14) matches TA-Lib ATR(14) with unstable period 0 (test_trange.c): first value at bar 14, 238 values', () => {
  // TA_SetUnstablePeriod(TA_FUNC_UNST_ATR, 0): the first output is the SMA of TR[1..14] at bar 14,
  // exactly our seeding. The two rows with unstable period 1 only drop that first output (begIdx 15,
  // value 3.4876 = the row above's output 1), so they check nothing more.
  const f = features(talibBars(), 14);
  assert.deepEqual(f.slice(0, 14).map((x) => x.atr14), Array(14).fill(null));
  assert.equal(f.filter((x) => x.atr14 !== null).length, 252 - 14);
  for (const [out, expected] of TALIB_ATR14) {
    const v = f[14 + out]!.atr14!;
    assert.ok(Math.abs(v - expected) < TALIB_TOLERANCE, `ATR(14) out[${out}] = bar ${14 + out}: ${v} vs TA-Lib ${expected} (±${TALIB_TOLERANCE})`);
  }
});

test('ATR(14) equals the full published TA-Lib ATR sequence to 1e-12 on all 238 bars', () => {
  const f = features(talibBars(), 14);
  ATR14.forEach((expected, k) => near(f[14 + k]!.atr14, expected, 1e-12, `ATR(14) bar ${14 + k}`));
});

// ---------------------------------------------------------------------------
// EWMA: pandas (and polars) documentation vectors
// ---------------------------------------------------------------------------

function runAlpha(xs: Observation[], alpha: number): (number | null)[] {
  let s: EwmaAlphaState = initialEwmaAlphaState();
  return xs.map((x) => {
    const r = ewmaAlphaStep(s, x, alpha);
    s = r.state;
    return r.value;
  });
}

function runHalfLife(xs: Observation[], ts: number[], halfLifeMs: number): (number | null)[] {
  let s: EwmaHalfLifeState = initialEwmaHalfLifeState();
  return xs.map((x, i) => {
    const r = ewmaHalfLifeStep(s, x, ts[i]!, halfLifeMs);
    s = r.state;
    return r.value;
  });
}

const DOC_X: Observation[] = [0, 1, 2, NaN, 4];
const DAY = 86_400_000;
const DOC_TIMES = ['2020-01-01', '2020-01-03', '2020-01-10', '2020-01-15', '2020-01-17'].map((d) => Date.parse(`${d}T00:00:00Z`));
const sixDp = (xs: (number | null)[]) => xs.map((v) => (v === null ? null : v.toFixed(6)));

test('EWMA by α: pandas docs ewm(com=0.5, adjust=False) on [0, 1, 2, NaN, 4] → [0, .666667, 1.555556, 1.555556, 3.650794]', () => {
  // pandas.DataFrame.ewm reference page, Examples, "adjust".
  const alpha = alphaFrom({ com: 0.5 });
  assert.equal(alpha, 2 / 3);
  assert.deepEqual(sixDp(runAlpha(DOC_X, alpha)), ['0.000000', '0.666667', '1.555556', '1.555556', '3.650794']);
});

test('EWMA by half-life over irregular times: 01-01, 01-03, 01-10, 01-15, 01-17, h = 4 days → [0, .292893, 1.492474, –, 3.254508]', () => {
  // polars Expr.ewm_mean_by(half_life="4d") docstring example; pandas ≥ 3.0
  // ewm(halflife="4 days", times=…, adjust=False) gives the same numbers and repeats
  // 1.492474 on the NaN row, as we do (polars prints null there).
  const v = runHalfLife(DOC_X, DOC_TIMES, 4 * DAY);
  assert.deepEqual(sixDp(v), ['0.000000', '0.292893', '1.492474', '1.492474', '3.254508']);
});

test('pandas docs: with adjust=False and ignore_na=False the weights of x0 and x2 in [x0, None, x2] are (1−α)² and α', () => {
  for (const alpha of [0.1, 0.3, 2 / 3, 0.9]) {
    const [x0, x2] = [3.5, -1.25];
    const w0 = (1 - alpha) ** 2;
    near(runAlpha([x0, null, x2], alpha)[2]!, (w0 * x0 + alpha * x2) / (w0 + alpha), 1e-15, `α ${alpha}`);
  }
});

test('α = ½ right after a missing row keeps the documented weights, not pandas 3\'s com = 1 special case', () => {
  // pandas 3.1.1: Series([0, NaN, 4]).ewm(alpha=0.5, adjust=False).mean()[2] == 3.0 (¼·0 + ¾·4);
  // for any other α it uses (1−α)² and α, which at α = ½ gives (¼·0 + ½·4)/¾.
  near(runAlpha([0, NaN, 4], 0.5)[2]!, 8 / 3, 1e-15, 'α ½ after a gap');
});


test('EWMA by α equals the direct weighted sum (1−α)^t·x0 + Σ α(1−α)^(t−i)·x_i to 1e-12 (no gaps)', () => {
  const r = rng(1);
  const xs = Array.from({ length: 400 }, () => 100 + 20 * (r() - 0.5));
  for (const alpha of [0.1, 0.05, 2 / 3, 1]) {
    const stepped = runAlpha(xs, alpha);
    for (let t = 0; t < xs.length; t += 7) {
      let direct = (1 - alpha) ** t * xs[0]!;
      for (let i = 1; i <= t; i++) direct += alpha * (1 - alpha) ** (t - i) * xs[i]!;
      near(stepped[t]!, direct, 1e-12, `α ${alpha}, t ${t}`);
    }
  }
});

test('EWMA by α with missing rows equals its weights written out, which sum to 1, to 1e-12', () => {
  // Observation j after a gap of g_j rows since the previous one: y_j = (o_j·y + α·x_j)/(o_j + α),
  // o_j = (1−α)^g_j. So x_i weighs a_i · Π_{j > i} o_j/(o_j + α), with a_i = α/(o_i + α) (1 for the first).
  const r = rng(2);
  const xs: Observation[] = Array.from({ length: 300 }, (_, i) => (i > 0 && r() < 0.2 ? NaN : 50 * r()));
  const obs = xs.flatMap((x, i) => (x !== null && !Number.isNaN(x) ? [i] : []));
  for (const alpha of [0.1, 0.3, 2 / 3]) {
    const stepped = runAlpha(xs, alpha);
    const o = obs.map((i, k) => (k === 0 ? 0 : (1 - alpha) ** (i - obs[k - 1]!)));
    for (let n = 0; n < obs.length; n += 5) {
      let direct = 0;
      let total = 0;
      for (let i = 0; i <= n; i++) {
        let w = i === 0 ? 1 : alpha / (o[i]! + alpha);
        for (let j = i + 1; j <= n; j++) w *= o[j]! / (o[j]! + alpha);
        direct += w * (xs[obs[i]!] as number);
        total += w;
      }
      near(total, 1, 1e-12, 'weights sum');
      near(stepped[obs[n]!]!, direct, 1e-12, `α ${alpha}, observation ${n}`);
    }
  }
});

test('EWMA by half-life equals the closed form Σ (0.5^((t_n−t_i)/h) − 0.5^((t_n−t_{i−1})/h))·x_i to 1e-12', () => {
  // Unrolling y_i = α_i·x_i + (1−α_i)·y_{i−1}, α_i = 1 − 0.5^((t_i − t_{i−1})/h) over the observed
  // rows: x_0 weighs 0.5^((t_n − t_0)/h) and x_i (i ≥ 1) weighs 0.5^((t_n − t_i)/h) − 0.5^((t_n − t_{i−1})/h).
  // Missing rows and a repeated time stamp are in the input; neither changes the weights.
  const r = rng(3);
  const ts: number[] = [];
  const xs: Observation[] = [];
  let t = Date.UTC(2026, 0, 5);
  for (let i = 0; i < 300; i++) {
    t += i === 150 ? 0 : Math.floor(r() * 4 * 3_600_000);
    ts.push(t);
    xs.push(i > 0 && r() < 0.15 ? null : 1 + r());
  }
  const obs = xs.flatMap((x, i) => (x === null ? [] : [i]));
  for (const h of [60_000, 3_600_000, DAY]) {
    const stepped = runHalfLife(xs, ts, h);
    for (let n = 0; n < obs.length; n += 3) {
      const tn = ts[obs[n]!]!;
      let direct = 0.5 ** ((tn - ts[obs[0]!]!) / h) * (xs[obs[0]!] as number);
      for (let i = 1; i <= n; i++) {
        direct += (0.5 ** ((tn - ts[obs[i]!]!) / h) - 0.5 ** ((tn - ts[obs[i - 1]!]!) / h)) * (xs[obs[i]!] as number);
      }
      near(stepped[obs[n]!]!, direct, 1e-12, `h ${h}, observation ${n}`);
    }
  }
});

test('EWMA by half-life with one row per half-life-in-rows spacing equals the α form', () => {
  const r = rng(4);
  const xs = Array.from({ length: 200 }, () => r());
  const alpha = alphaFrom({ halflife: 5 }); // α = 1 − 0.5^(1/5)
  const byAlpha = runAlpha(xs, alpha);
  const byTime = runHalfLife(xs, xs.map((_, i) => i * 60_000), 5 * 60_000);
  byAlpha.forEach((v, i) => near(byTime[i]!, v!, 1e-12, `row ${i}`));
});

test('EWMA states survive a JSON round trip mid-stream (state stores hold them as JSON)', () => {
  const r = rng(5);
  const xs: Observation[] = Array.from({ length: 100 }, () => (r() < 0.1 ? null : r()));
  let a: EwmaAlphaState = initialEwmaAlphaState();
  let h: EwmaHalfLifeState = initialEwmaHalfLifeState();
  const direct = { a: runAlpha(xs, 0.1), h: runHalfLife(xs, xs.map((_, i) => i * 1000), 7000) };
  xs.forEach((x, i) => {
    const ra = ewmaAlphaStep(JSON.parse(JSON.stringify(a)) as EwmaAlphaState, x, 0.1);
    const rh = ewmaHalfLifeStep(JSON.parse(JSON.stringify(h)) as EwmaHalfLifeState, x, i * 1000, 7000);
    a = ra.state;
    h = rh.state;
    assert.equal(ra.value, direct.a[i]);
    assert.equal(rh.value, direct.h[i]);
  });
});

test('EWMA: no value before the first observation; leading missing rows change nothing', () => {
  assert.deepEqual(runAlpha([null, NaN, 5, 7], 0.5), [null, null, 5, 6]);
  assert.deepEqual(runHalfLife([null, 5, 7], [0, 10 * DAY, 11 * DAY], DAY), [null, 5, 6]);
});

test('EWMA by half-life refuses a time before the previous row', () => {
  const { state } = ewmaHalfLifeStep(initialEwmaHalfLifeState(), 1, 1000, 60_000);
  assert.throws(() => ewmaHalfLifeStep(state, 2, 999, 60_000), (e: unknown) => e instanceof InputError && e.reason === 'late');
});

test('alphaFrom converts com, span and half-life as pandas does and names the key when out of range', () => {
  assert.equal(alphaFrom({ com: 0.5 }), 2 / 3);
  assert.equal(alphaFrom({ span: 3 }), 0.5);
  near(alphaFrom({ halflife: 1 }), 0.5, 1e-15, 'halflife 1');
  assert.equal(alphaFrom({ alpha: 0.1 }), 0.1);
  assert.equal(alphaFrom({ alpha: 1 }), 1);
  for (const bad of [{ alpha: 0 }, { alpha: 1.5 }, { com: -1 }, { span: 0.5 }, { halflife: 0 }, { alpha: NaN }]) {
    assert.throws(() => alphaFrom(bad, 'COST_EWMA_ALPHA'), (e: unknown) => e instanceof ConfigError && e.message.startsWith('COST_EWMA_ALPHA '));
  }
});
