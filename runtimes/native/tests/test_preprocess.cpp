// Preprocessing numbers against the Python reference. The vectors below were computed with
// numpy 2.4 / scipy 1.17 / pybaselines 1.2 by pace_edge.preprocess, e.g.
//   n = 24; axis = np.linspace(400, 446, n); i = np.arange(n)
//   x = 100 + 3*i + 40*np.exp(-0.5*((i-11)/2)**2) + np.round(5*np.sin(1.7*i), 3)
//   xs = x.copy(); xs[6] += 300
//   Pipeline.from_spec("savgol:7:2").apply(x, axis)[0]      -> kSavgol72 (and so on)
//   interp_rows(kTarget, axis, x[None])[0]                  -> kInterp
// (tests/test_native.py checks the same steps on many more spectra at test time.)
#include <algorithm>
#include <cmath>

#include "check.hpp"
#include "pace/errors.hpp"
#include "pace/json.hpp"
#include "pace/preprocess.hpp"

using pace::Vec;
namespace json = pace::json;

namespace {

const Vec kAxis = {400.0, 402.0, 404.0, 406.0, 408.0, 410.0, 412.0, 414.0, 416.0, 418.0, 420.0, 422.0, 424.0, 426.0, 428.0, 430.0, 432.0, 434.0, 436.0, 438.0, 440.0, 442.0, 444.0, 446.0};
const Vec kX = {100.00001079831401, 107.95814906612688, 104.72360261189571, 104.3844185051161, 114.55849964472732, 119.4363598615297, 116.2584773449363, 123.32241132946452, 141.28209869433397, 153.24522638850536, 160.49287610338382, 172.255, 176.2988761033838, 162.71822638850534, 150.12709869433397, 152.2084113294645, 154.15347734493628, 148.5163598615297, 150.4454996447273, 160.8804185051161, 162.64660261189573, 158.45214906612688, 164.527010798314, 173.9280006091992};
const Vec kSpiked = {100.00001079831401, 107.95814906612688, 104.72360261189571, 104.3844185051161, 114.55849964472732, 119.4363598615297, 416.2584773449363, 123.32241132946452, 141.28209869433397, 153.24522638850536, 160.49287610338382, 172.255, 176.2988761033838, 162.71822638850534, 150.12709869433397, 152.2084113294645, 154.15347734493628, 148.5163598615297, 150.4454996447273, 160.8804185051161, 162.64660261189573, 158.45214906612688, 164.527010798314, 173.9280006091992};
const Vec kTarget = {400.0, 401.3, 420.0, 437.9, 446.0, 446.9};
const Vec kInterp = {100.00001079831401, 105.17280067239241, 160.49287610338382, 160.35867256209653, 173.9280006091992, 173.9280006091992};
const Vec kSavgol72 = {101.22947677678339, 103.79087981441343, 106.49296046932724, 109.33571874152487, 111.67710889487054, 114.86026037428448, 120.12497494240299, 127.44963537122659, 137.869136085241, 151.66590288560002, 164.62443523866358, 171.0289274663955, 169.756387619616, 163.8895695522667, 156.67923132333624, 151.01701632360755, 149.42587970430776, 151.4727365647607, 154.21801365677536, 156.58381397962015, 159.74049686182843, 163.42557679666072, 167.1972683789295, 171.05557160863478};
const Vec kSavgol531 = {16.01675606930813, 0.784043320274602, -3.595694444541623, 5.600080455604168, 9.073388009855679, -0.44484760188971406, 0.3637343911559956, 13.86500868901714, 16.262343476156595, 8.729469216821947, 9.755117623575604, 9.747916666666654, -5.494034290242275, -15.777302550155255, -5.1610934761566005, 3.8677413109828427, -2.487901057822634, -3.194652398110277, 7.534945323477636, 7.306086211062516, -2.7923055554583653, 0.16630694893858866, 6.136416479774439, 16.749908876233377};
const Vec kSavgol11 = {100.00001079831401, 107.95814906612688, 104.72360261189571, 104.3844185051161, 114.55849964472732, 119.4363598615297, 116.2584773449363, 123.32241132946452, 141.28209869433397, 153.24522638850536, 160.49287610338382, 172.255, 176.2988761033838, 162.71822638850534, 150.12709869433397, 152.2084113294645, 154.15347734493628, 148.5163598615297, 150.4454996447273, 160.8804185051161, 162.64660261189573, 158.45214906612688, 164.527010798314, 173.9280006091992};
const Vec kMinMax = {0.0, 0.10430218373488812, 0.06190907026854355, 0.057463603020460184, 0.19080872026344473, 0.25473968695998694, 0.21308923116504025, 0.3056716562939608, 0.5410576911066711, 0.6978506872585613, 0.7928409559329354, 0.9469995249966698, 1.0, 0.8220071863378541, 0.6569833993676599, 0.6842618212263429, 0.7097545465466307, 0.6358724847247755, 0.6611564751941517, 0.797920224152492, 0.8210684597090472, 0.766094463320006, 0.84571375658076, 0.9689264645718515};
const Vec kVector = {0.1407212465993817, 0.15192003676666987, 0.14736834316594585, 0.1468910391141594, 0.1612081313778483, 0.16807231634109165, 0.16360036093117342, 0.17354081581975736, 0.19881390903588533, 0.21564856964153967, 0.22584755156815509, 0.2423993571547212, 0.24808994940384937, 0.22897909189242743, 0.21126070195355687, 0.21418955072307672, 0.21692667157166662, 0.20899405043333452, 0.21170875969175199, 0.22639290600808484, 0.22887830203200443, 0.22297581535173558, 0.23152443558735122, 0.2447536242133804};
const Vec kSnv = {-1.783228282663526, -1.4534626093282428, -1.58749425762567, -1.601549212640613, -1.179960317767872, -0.9778337895904087, -1.1095174237015883, -0.8168053761834522, -0.07260011140171485, 0.42312247175825485, 0.7234472472138112, 1.2108407274588648, 1.378409005520879, 0.8156602888177797, 0.2939149304954141, 0.380159406206651, 0.46075815715671564, 0.2271698755727928, 0.3071086826348715, 0.7395060510134515, 0.8126923757047325, 0.6388845388406249, 0.8906118652727139, 1.2801657572355256};
const Vec kArea = {0.015170570768898241, 0.016377865636336076, 0.015887166530431276, 0.01583571037103182, 0.01737917638373336, 0.018119175540023864, 0.0176370726759506, 0.018708711664422763, 0.021433298451773723, 0.023248173008815806, 0.024347682719164782, 0.02613206385614335, 0.026745542875968368, 0.0246852810225701, 0.022775135291387017, 0.023090882263526166, 0.023385959848041697, 0.022530777043240892, 0.02282343852767935, 0.02440647510713048, 0.024674415288025494, 0.024038092813208168, 0.024959683911886032, 0.026385867570119494};
const Vec kMax = {0.567218651692781, 0.6123586914009531, 0.5940117425960476, 0.5920878272865665, 0.6497971069171696, 0.677465236882683, 0.6594396964661358, 0.6995076432429822, 0.801378328761917, 0.8692354130416605, 0.9103454295946212, 0.9770623829671357, 1.0, 0.9229680301143008, 0.8515488130865769, 0.8633544052782709, 0.8743871813144106, 0.8424124029834309, 0.8533548424693543, 0.9125436421430949, 0.922561766738194, 0.8987700464591085, 0.9332277915477655, 0.9865519534407338};
const Vec kAsls = {3.787800055080666, 7.976136905242797, 0.9698951333333383, -3.1487601596322747, 3.2317070092384483, 4.325356776215472, -2.6054022173232028, 0.7567570367166212, 15.110290512195931, 23.607025874198257, 27.564630384995525, 36.23783826354796, 37.404927277622505, 21.152500225794427, 6.068783306999421, 5.800296939685779, 5.498921893092785, -2.323611142269101, -2.5639432921339846, 5.694439668720236, 5.278373785403716, -1.1055411849467873, 2.768511157356471, 9.963709723496038};
const Vec kArpls = {-0.7669645919856123, 4.068596605294246, -2.2877600534727094, -5.751188400127447, 1.2953012672749225, 3.047060767767377, -3.251887439849483, 0.6965381694433148, 15.550048625266427, 24.419408930559683, 28.588776661585428, 37.29117986402207, 38.29697244754476, 21.702952271768822, 6.126243060308838, 5.252839002773328, 4.272187903897702, -4.26832128040715, -5.2310632669866095, 2.3169365818221195, 1.1998483204794752, -5.8778553905032425, -2.691044590803699, 3.818148402709454};
const Vec kAsls1 = {-4.7998945935233195, 2.6830541095307296, -1.0239988553497312, -1.9370653594582592, 7.471363912237692, 11.591043625037017, 7.6665716480655846, 13.991582743863816, 31.226338802747136, 42.49576152973512, 49.09220203895988, 60.25220893196129, 63.75422024066229, 49.69545995134166, 36.675917142679424, 38.36549058046177, 39.95718288916581, 34.00664888188065, 35.65637879008153, 45.84754415426367, 47.4158223089909, 43.070878633478614, 49.03832111455574, 58.380929995445484};
const Vec kCrop = {119.4363598615297, 116.2584773449363, 123.32241132946452, 141.28209869433397, 153.24522638850536, 160.49287610338382, 172.255, 176.2988761033838, 162.71822638850534, 150.12709869433397, 152.2084113294645};
const Vec kDespiked = {100.00001079831401, 107.95814906612688, 104.72360261189571, 104.3844185051161, 114.55849964472732, 119.4363598615297, 126.03816907061281, 123.32241132946452, 141.28209869433397, 153.24522638850536, 160.49287610338382, 172.255, 176.2988761033838, 162.71822638850534, 150.12709869433397, 152.2084113294645, 154.15347734493628, 148.5163598615297, 150.4454996447273, 160.8804185051161, 162.64660261189573, 158.45214906612688, 164.527010798314, 173.9280006091992};
const Vec kResampleGrid = {103.97907993222044, 104.55401055850591, 116.9974297531285, 119.7904443372004, 147.26366254141965, 166.3739380516919, 169.50855124594457, 151.16775501189923, 151.334918603233, 155.6629590749217, 160.5493758390113, 169.2275057037566};

// |a - b| <= rel * (|b| + max|b|): relative per element, with the vector's scale as a floor.
void check_vec(const Vec& got, const Vec& want, double rel, const char* what, int line) {
    if (got.size() != want.size()) {
        check::fail(__FILE__, line, std::string(what) + ": size " + std::to_string(got.size()) + " vs " +
                                        std::to_string(want.size()));
        return;
    }
    double scale = 0;
    for (double v : want) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i) {
        if (std::fabs(got[i] - want[i]) > rel * (std::fabs(want[i]) + scale)) {
            check::fail(__FILE__, line, std::string(what) + "[" + std::to_string(i) + "]: " +
                                            json::number(got[i]) + " vs " + json::number(want[i]));
            return;
        }
    }
}
#define CHECK_VEC(got, want, rel) check_vec(got, want, rel, #got, __LINE__)

Vec run(const std::string& steps, const Vec& x, Vec* axis_out = nullptr) {
    const pace::Pipeline p = pace::Pipeline::from_json(json::parse(steps));
    Vec out = x, axis = kAxis;
    p.apply(out, axis);
    if (axis_out) *axis_out = axis;
    return out;
}

}  // namespace

TEST(interp_is_np_interp_with_exact_nodes) {
    CHECK_VEC(pace::interp(kTarget, kAxis, kX), kInterp, 1e-15);
    const Vec same = pace::interp(kAxis, kAxis, kX);
    CHECK(same == kX);  // coinciding nodes are copied exactly
}

TEST(resample_steps) {
    Vec axis;
    CHECK_VEC(run(R"([{"name":"resample","start":401,"stop":445,"num":12}])", kX, &axis), kResampleGrid, 1e-14);
    CHECK(axis.size() == 12 && axis.front() == 401 && axis.back() == 445);
    CHECK_THROWS(run(R"([{"name":"resample","axis":[398.0, 420.0]}])", kX), pace::DataError,
                 "extends beyond the data's axis 400..446 by more than half a step");
    Vec a2;  // half a step of overhang is allowed (edge value held)
    CHECK(run(R"([{"name":"resample","axis":[399.0, 447.0]}])", kX, &a2) == (Vec{kX.front(), kX.back()}));
}

TEST(crop_step) {
    Vec axis;
    CHECK(run(R"([{"name":"crop","lo":410,"hi":430}])", kX, &axis) == kCrop);
    CHECK(axis.front() == 410 && axis.back() == 430);
    CHECK_THROWS(run(R"([{"name":"crop","lo":401,"hi":401.5}])", kX), pace::DataError, "keeps 0 point(s)");
}

TEST(savgol_matches_scipy_interp_mode) {
    CHECK_VEC(run(R"([{"name":"savgol","window":7,"polyorder":2,"deriv":0}])", kX), kSavgol72, 1e-12);
    CHECK_VEC(run(R"([{"name":"savgol","window":5,"polyorder":3,"deriv":1}])", kX), kSavgol531, 1e-10);
    CHECK_VEC(run(R"([{"name":"savgol","window":1,"polyorder":0}])", kX), kSavgol11, 1e-15);
    CHECK_THROWS(run(R"([{"name":"savgol","window":25,"polyorder":2}])", kX), pace::DataError,
                 "savgol window 25 is longer than the spectra (24 points)");
}

TEST(normalize_methods_and_zero_guards) {
    CHECK_VEC(run(R"([{"name":"normalize","method":"minmax"}])", kX), kMinMax, 1e-15);
    CHECK_VEC(run(R"([{"name":"normalize","method":"vector"}])", kX), kVector, 1e-15);
    CHECK_VEC(run(R"([{"name":"normalize","method":"snv"}])", kX), kSnv, 1e-15);
    CHECK_VEC(run(R"([{"name":"normalize","method":"area"}])", kX), kArea, 1e-15);
    CHECK_VEC(run(R"([{"name":"normalize","method":"max"}])", kX), kMax, 1e-15);
    const Vec flat(24, 5.0), zeros(24, 0.0);
    for (const char* m : {"minmax", "snv", "vector", "area", "max"}) {
        const std::string steps = std::string(R"([{"name":"normalize","method":")") + m + "\"}]";
        CHECK(run(steps, zeros) == zeros);
        if (std::string(m) == "minmax" || std::string(m) == "snv") CHECK(run(steps, flat) == zeros);
    }
}

TEST(whittaker_baselines_match_pybaselines) {
    CHECK_VEC(run(R"([{"name":"baseline","method":"asls","options":{"lam":100,"p":0.05}}])", kX), kAsls, 1e-9);
    CHECK_VEC(run(R"([{"name":"baseline","method":"arpls","options":{"lam":1000}}])", kX), kArpls, 1e-9);
    CHECK_VEC(run(R"([{"name":"baseline","method":"asls","options":{"lam":10,"diff_order":1}}])", kX), kAsls1, 1e-9);
}

TEST(despike_replaces_the_spike_only) {
    const std::vector<bool> mask = pace::spike_mask(kSpiked, 6.0, 3);
    for (size_t i = 0; i < mask.size(); ++i) CHECK(mask[i] == (i == 6));
    CHECK_VEC(run(R"([{"name":"despike","threshold":6.0,"window":3}])", kSpiked), kDespiked, 1e-15);
    CHECK(run(R"([{"name":"despike","threshold":6.0,"window":3}])", kX) == kX);  // no spike: identical
}

TEST(unsupported_steps_are_refused_by_name) {
    auto build = [](const char* steps) { return pace::Pipeline::from_json(json::parse(steps)); };
    CHECK_THROWS(build(R"([{"name":"baseline","method":"snip","options":{}}])"), pace::Error,
                 "baseline method 'snip' is not implemented in the native runtime");
    CHECK_THROWS(build(R"([{"name":"smooth"}])"), pace::Error, "unknown preprocessing step 'smooth'");
    CHECK_THROWS(build(R"([{"name":"baseline","method":"asls","options":{"lam":1e5,"bogus":1}}])"),
                 pace::Error, "unknown parameter bogus");
    CHECK_THROWS(build(R"([{"name":"baseline","method":"asls","options":{"weights":[1,2]}}])"), pace::Error,
                 "initial weights are not supported");
    CHECK_THROWS(build(R"([{"name":"normalize","method":"l3"}])"), pace::Error, "method must be one of");
    CHECK_THROWS(build(R"([{"name":"savgol","window":4,"polyorder":2}])"), pace::Error, "window must be odd");
    CHECK_THROWS(build(R"([{"name":"crop","lo":5}])"), pace::Error, "missing parameter hi");
    CHECK_THROWS(build(R"({"name":"crop"})"), pace::Error, "must be a list of steps");
}

TEST(bad_spectra_are_data_errors) {
    const pace::Pipeline p = pace::Pipeline::from_json(json::parse(R"([{"name":"normalize","method":"snv"}])"));
    Vec x = kX, axis = kAxis;
    x[3] = NAN;
    CHECK_THROWS(p.apply(x, axis), pace::DataError, "spectrum: non-finite intensity nan at x=406");
    x = kX;
    axis[5] = axis[4];
    CHECK_THROWS(p.apply(x, axis), pace::DataError, "axis is not strictly increasing at point 5");
    axis = kAxis;
    x.pop_back();
    CHECK_THROWS(p.apply(x, axis), pace::DataError, "axis has 24 points but spectra have 23");
}

TEST_MAIN()
